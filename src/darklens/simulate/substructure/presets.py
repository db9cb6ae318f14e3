"""Named presets reproducing the published DeepLense recipes (DeepLenseSim, Models I–III).

Instrument values follow lenstronomy's observation configs
(``Euclid(band='VIS', psf_type='GAUSSIAN', coadd_years=6)`` for Model II,
``HST(band='WFC3_F160W')`` for Model III) and DeepLenseSim's ``simple_sim`` for Model I.
"""

from __future__ import annotations

from darklens.registry import Registry
from darklens.simulate.substructure.config import (
    DeepLenseCompatConfig,
    InstrumentConfig,
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

PRESETS.add(
    "model_ii",
    SubstructureConfig(
        preset="model_ii",
        instrument=InstrumentConfig(
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
        ),
        compat=_SIMAPI_COMPAT,
    ),
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


def get_preset(name: str) -> SubstructureConfig:
    return PRESETS.get(name)
