"""Lens-finding presets, in their own registry (``darklens presets`` lists both kinds).

They are kept apart from the substructure ``PRESETS`` because they build a different config type;
:mod:`darklens.simulate.api` looks a name up in both.

Sources of the instrument values:

- ``lensfind_space`` (Bologna Lens Finding Challenge space set, Metcalf et al. 2019, A&A 625,
  A119: Euclid-VIS-like, 0.1″ pixels, 101×101): exposure, sky, zero point, read noise and gain of
  lenstronomy's ``Euclid(band='VIS')`` configuration (Euclid Wide: 4 × 566 s); PSF FWHM 0.18″.
- ``lensfind_ground`` (the challenge's KiDS-like set: u, g, r, i, 0.2″ pixels, 101×101): exposure
  times of KiDS (de Jong et al. 2013, Exp. Astron. 35, 25; Kuijken et al. 2019, A&A 625, A2:
  u 4×250 s, g 5×180 s, r 5×360 s, i 1200 s); seeing ranges around the KiDS DR4 PSF medians
  (u ≈ 1.0″, g ≈ 0.85″, r ≈ 0.7″, i ≈ 0.8″; r is taken in the best seeing); dark Paranal sky
  (Patat 2003, A&A 400, 1183, converted to AB), i brighter as KiDS observes it with the moon up;
  OmegaCAM read noise ≈ 5 e-. Zero points (mag giving 1 e-/s) are solved so that a point source
  at the KiDS DR4 5σ limits in a 2″ aperture (u 24.23, g 25.12, r 25.02, i 23.68) has S/N = 5 at
  the median seeing under lenstronomy's noise model.
- ``lensfind_deeplense``: the DeepLense lens-finding test's shape, 3 bands × 64 × 64. Its images
  are survey cutouts; we assume HSC-Wide-like g, r, i (0.168″ pixels; Aihara et al. 2018, PASJ 70,
  S4: g 4×150 s, r 4×150 s, i 6×200 s, seeing medians g 0.77″, r 0.76″, i 0.58″, 5σ point-source
  depths g 26.5, r 26.1, i 25.9 from which the zero points are solved as above; read noise 4.5 e-).

Colours (``m_band − m_ref``): red lens galaxies are early types at z ≈ 0.2–0.8 (g − r ≈ 1.1–1.8,
r − i ≈ 0.4–0.9, u − r ≈ 2.4–3.3); blue galaxies are star-forming sources at z ≈ 1–3 with flat
spectra; stars run from A-type (u − r ≈ 0.75, g − r ≈ −0.25) to M dwarfs (g − r ≈ 1.5,
r − i ≈ 1.5). All are approximate SDSS-like AB colours.

Unlensed source magnitudes reach ~2–3 mag below each survey's point-source depth, so that, as in
the challenge, a good fraction of lenses are barely detectable: the lensed-source S/N (truth
``lensed_snr``) then spans ≈ 1 to > 1000, with 10–20 % of lenses below 5 (measured on 300 lenses
per preset).
"""

from __future__ import annotations

from darklens.registry import Registry
from darklens.simulate.lensfind.config import (
    BandConfig,
    ColourConfig,
    DeflectorConfig,
    LensedSourceConfig,
    LensFindConfig,
    SurveyConfig,
)

LENSFIND_PRESETS: Registry[LensFindConfig] = Registry("lens-finding preset")

LENSFIND_PRESETS.add(
    "lensfind_space",
    LensFindConfig(
        preset="lensfind_space",
        instrument=SurveyConfig(
            name="euclid_vis",
            num_pix=101,
            pixel_scale_arcsec=0.1,
            bands=(
                BandConfig(
                    name="VIS",
                    seeing_fwhm_range_arcsec=(0.18, 0.18),
                    exposure_time_s=566.0,
                    num_exposures=4,
                    sky_brightness_mag_arcsec2=22.3,
                    magnitude_zero_point=25.72,
                    read_noise_e=4.2,
                    ccd_gain=3.1,
                ),
            ),
            reference_band="VIS",
        ),
        # VIS spans r+i+z: early types are ≈ 0.3 mag brighter than in r, with a smaller K-term.
        deflector=DeflectorConfig(absolute_magnitude_at_200kms=-22.3, k_correction_mag_per_z=0.6),
        source=LensedSourceConfig(magnitude_range=(21.5, 28.0)),
        colours=ColourConfig(
            red_galaxy=((0.0, 0.0),), blue_galaxy=((0.0, 0.0),), star=((0.0, 0.0),)
        ),
    ),
)


def _kids_band(name, seeing, exposure, n_exp, sky, zero_point) -> BandConfig:
    return BandConfig(
        name=name,
        seeing_fwhm_range_arcsec=seeing,
        exposure_time_s=exposure,
        num_exposures=n_exp,
        sky_brightness_mag_arcsec2=sky,
        magnitude_zero_point=zero_point,
        read_noise_e=5.0,
        ccd_gain=2.5,
    )


LENSFIND_PRESETS.add(
    "lensfind_ground",
    LensFindConfig(
        preset="lensfind_ground",
        instrument=SurveyConfig(
            name="kids",
            num_pix=101,
            pixel_scale_arcsec=0.2,
            bands=(
                _kids_band("u", (0.8, 1.1), 250.0, 4, 22.9, 23.76),
                _kids_band("g", (0.7, 0.95), 180.0, 5, 22.1, 25.68),
                _kids_band("r", (0.6, 0.8), 360.0, 5, 21.1, 25.59),
                _kids_band("i", (0.6, 0.9), 240.0, 5, 19.3, 25.13),
            ),
            reference_band="r",
        ),
        deflector=DeflectorConfig(absolute_magnitude_at_200kms=-22.0, k_correction_mag_per_z=1.0),
        source=LensedSourceConfig(magnitude_range=(21.0, 28.0)),
        colours=ColourConfig(
            red_galaxy=((2.4, 3.3), (1.1, 1.8), (0.0, 0.0), (-0.4, -0.9)),
            blue_galaxy=((0.3, 1.2), (0.1, 0.6), (0.0, 0.0), (0.0, -0.3)),
            star=((0.75, 4.0), (-0.25, 1.5), (0.0, 0.0), (0.15, -1.5)),
        ),
    ),
)


def _hsc_band(name, seeing, exposure, n_exp, sky, zero_point) -> BandConfig:
    return BandConfig(
        name=name,
        seeing_fwhm_range_arcsec=seeing,
        exposure_time_s=exposure,
        num_exposures=n_exp,
        sky_brightness_mag_arcsec2=sky,
        magnitude_zero_point=zero_point,
        read_noise_e=4.5,
        ccd_gain=3.0,
    )


LENSFIND_PRESETS.add(
    "lensfind_deeplense",
    LensFindConfig(
        preset="lensfind_deeplense",
        instrument=SurveyConfig(
            name="hsc_wide",
            num_pix=64,
            pixel_scale_arcsec=0.168,
            bands=(
                _hsc_band("g", (0.65, 0.9), 150.0, 4, 22.0, 28.83),
                _hsc_band("r", (0.6, 0.9), 150.0, 4, 21.2, 28.82),
                _hsc_band("i", (0.5, 0.7), 200.0, 6, 20.3, 28.54),
            ),
            reference_band="i",
        ),
        # i band: early types ≈ 0.4 mag brighter than in r; K-correction and evolution cancel more.
        deflector=DeflectorConfig(absolute_magnitude_at_200kms=-22.4, k_correction_mag_per_z=0.5),
        source=LensedSourceConfig(magnitude_range=(21.5, 28.5)),
        colours=ColourConfig(
            red_galaxy=((1.5, 2.7), (0.4, 0.9), (0.0, 0.0)),
            blue_galaxy=((0.1, 0.9), (0.0, 0.3), (0.0, 0.0)),
            star=((-0.4, 3.0), (-0.15, 1.5), (0.0, 0.0)),
        ),
    ),
)


def get_lensfind_preset(name: str) -> LensFindConfig:
    return LENSFIND_PRESETS.get(name)
