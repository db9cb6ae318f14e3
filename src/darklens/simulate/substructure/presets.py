"""Named presets reproducing the published DeepLense recipes (DeepLenseSim, Models I–IV), and
``robust``, a domain-randomised preset for models meant to work on all of them.

Instrument values follow lenstronomy's observation configs
(``Euclid(band='VIS', psf_type='GAUSSIAN', coadd_years=6)`` for Models II and IV,
``HST(band='WFC3_F160W')`` for Model III) and DeepLenseSim's ``simple_sim`` for Model I.
"""

from __future__ import annotations

from darklens.registry import Registry
from darklens.simulate.substructure.config import (
    DeepLenseCompatConfig,
    InstrumentConfig,
    LensConfig,
    LensLightConfig,
    RandomizeConfig,
    SourceConfig,
    SubstructureConfig,
)

PRESETS: Registry[SubstructureConfig] = Registry("preset")
# DeepLenseSim's simple_sim_2 (Models II and III): SimAPI with z_source_convention 2.5, the image
# stored as twice the noiseless model. Model I (simple_sim, ImageModel) keeps the defaults.
_SIMAPI_COMPAT = DeepLenseCompatConfig(z_source_convention=2.5, twice_noiseless_model=True)

PRESETS.add(
    "model_i",
    SubstructureConfig(
        preset="model_i",
        instrument=InstrumentConfig(
            name="deeplense_model_i",
            num_pix=150,
            pixel_scale_arcsec=0.05,
            psf_fwhm_arcsec=0.087,
            psf_truncation_sigma=3.0,
            noise="counts",
            log10_exposure_range=(3.0, 3.5),
            background_rms=0.01,
        ),
        source=SourceConfig(magnitude=None, amplitude=20.0),
    ),
)

# lenstronomy's Euclid(band='VIS', psf_type='GAUSSIAN', coadd_years=6): Models II and IV.
_EUCLID_VIS = InstrumentConfig(
    name="euclid_vis",
    num_pix=64,
    pixel_scale_arcsec=0.101,
    psf_fwhm_arcsec=0.16,
    noise="ccd",
    exposure_time_s=566.0,
    num_exposures=4,
    sky_brightness_mag_arcsec2=22.3,
    magnitude_zero_point=25.72,
    read_noise_e=4.2,
    ccd_gain=3.1,
)

PRESETS.add(
    "model_ii",
    SubstructureConfig(preset="model_ii", instrument=_EUCLID_VIS, compat=_SIMAPI_COMPAT),
)

PRESETS.add(
    "model_iii",
    SubstructureConfig(
        preset="model_iii",
        instrument=InstrumentConfig(
            name="hst_wfc3_f160w",
            num_pix=64,
            pixel_scale_arcsec=0.08,
            psf_fwhm_arcsec=0.08,
            noise="ccd",
            exposure_time_s=5400.0,
            num_exposures=1,
            sky_brightness_mag_arcsec2=22.3,
            magnitude_zero_point=25.96,
            read_noise_e=4.0,
            ccd_gain=2.5,
        ),
        compat=_SIMAPI_COMPAT,
    ),
)


# DeepLenseSim's Model IV (Model_IV/sim_*.py), one band of its three: the r band (its second
# channel: source 19 mag, lens light 18 and 28 mag; g is 22 / 17, i 18 / 19). A real galaxy as
# the source, spanning 0.64″ (its Galaxy10 cutouts: 256 pixels of 0.0025″), centred within
# ±0.3″, rotated uniformly. Compat: the main SIE has θ_E 1.5″, not rescaled (SimAPI's z_source
# equals its z_source_convention, 2.5); no_sub is an SIS of σ_v ~ N(260, 20) km/s for a source at
# z 2.5, without shear; noise added, clipped at 0 and divided by the maximum.
_MODEL_IV_COMPAT = DeepLenseCompatConfig(
    einstein_radius_arcsec=1.5,
    no_sub_velocity_dispersion_kms=(260.0, 20.0),
    no_sub_sigma_v_z_source=2.5,
    normalize_max=True,
)

PRESETS.add(
    "model_iv",
    SubstructureConfig(
        preset="model_iv",
        instrument=_EUCLID_VIS,
        lens=LensConfig(e1=0.0, e2=0.0),
        source=SourceConfig(
            kind="image_bank",
            magnitude=19.0,
            center_max_arcsec=0.3,
            bank_box_arcsec=0.64,
            bank_scale_range=(0.7, 1.4),
            bank_flip=True,
        ),
        lens_light=LensLightConfig(
            magnitudes=(18.0, 28.0),
            r_sersic_arcsec=(0.4, 1.5),
            n_sersic=(2.3, 1.2),
            e1=(0.0, 0.0),
            e2=(0.05, 0.3),
        ),
        compat=_MODEL_IV_COMPAT,
    ),
)

# Anchors of the robust preset: DeepLenseSim's Models I–IV as --deeplense-compat makes them.
# Model I's 150 × 150 images are rendered on their own grid, noised, then resized to the preset's
# 64 × 64 as a model's preprocessing resizes them (bilinear, anti-aliased).
ANCHORS: Registry[SubstructureConfig] = Registry("robust anchor")
for _name in ("model_i", "model_ii", "model_iii", "model_iv"):
    ANCHORS.add(f"{_name}_compat", PRESETS.get(_name).override({"deeplense_compat": True}))

# Domain randomisation over what separates Models I–IV and the physical presets (see
# RandomizeConfig): Einstein radius, convention, pixel scale, PSF, noise, source kind and
# brightness, lens light and flux scale drawn per image on a 64 × 64 Euclid-VIS-like grid; half
# of the images take the settings of DeepLenseSim's Models I–IV instead (the anchors).
PRESETS.add(
    "robust",
    SubstructureConfig(
        preset="robust",
        instrument=_EUCLID_VIS,
        source=SourceConfig(bank_box_arcsec=0.64, bank_scale_range=(0.6, 2.5), bank_flip=True),
        compat=_SIMAPI_COMPAT,
        randomize=RandomizeConfig(
            enabled=True, anchors=tuple(ANCHORS.names()), anchor_probability=0.8
        ),
    ),
)


def get_anchor(name: str) -> SubstructureConfig:
    """An anchor of domain randomisation, or KeyError naming the close matches."""
    return ANCHORS.get(name)


def get_preset(name: str) -> SubstructureConfig:
    return PRESETS.get(name)
