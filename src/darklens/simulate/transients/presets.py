"""Lensed-transient presets (DeepGraviLens-like), in their own registry.

All cutouts are 45 × 45 in g, r, i, z, as DeepGraviLens (Pinciroli Vago & Fraternali 2023)
whose data were made with deeplenstronomy. Instrument values:

- ``transients_des_deep`` / ``transients_desi_dot``: DECam (0.263″ px, gain 6.083, read noise
  7 e-); zero points and dark-sky brightness of lenstronomy's ``DES`` configuration; visits of
  200 s (DES-deep, DeepZipper's Table 1) and 90 s (DESI-DOT), sky varied by ~1 mag for moon
  and airmass, seeing around the DES medians (g 1.12″, r 0.96″, i 0.88″, z 0.84″). DES-deep:
  15 nights one every 7 days; DESI-DOT: every 3 days.
- ``transients_lsst_wide``: LSST (0.2″ px, gain 2.3, read noise 10 e-), zero points and sky of
  lenstronomy's ``LSST`` configuration, one 2 × 15 s visit per epoch, seeing around the LSST
  medians (g 0.77″ … z 0.69″), 15 epochs. The wide survey revisits a band every ~1–3 weeks;
  we assume a regular 10-day cadence with all bands on one night (a simplification).

Lenses are bright early types at z 0.2–0.7 with θ_E 0.8–2.5″; lensed galaxies sit at z 0.8–1.6,
lensed supernovae at z 0.5–1.2, and only supernovae whose brightest image beats the survey's
single-epoch detection limit (24.0 mag DES-deep and LSST-wide, 23.5 DESI-DOT) and 3 % of the
lens galaxy's flux in some band and epoch are kept (redrawn otherwise), as in survey-selected
samples: a fainter one is lost in the lens galaxy's light and photon noise. Colours
are approximate SDSS-like AB colours for g, r, i, z (red lens galaxies, blue sources, stars).
"""

from __future__ import annotations

from darklens.registry import Registry
from darklens.simulate.lensfind.config import ColourConfig, DeflectorConfig, LensedSourceConfig
from darklens.simulate.transients.config import (
    SupernovaConfig,
    TransientBandConfig,
    TransientsConfig,
    TransientSurveyConfig,
)

TRANSIENT_PRESETS: Registry[TransientsConfig] = Registry("lensed-transient preset")

_COLOURS = ColourConfig(
    red_galaxy=((1.0, 1.8), (0.0, 0.0), (-0.4, -0.7), (-0.6, -1.1)),
    blue_galaxy=((0.2, 0.6), (0.0, 0.0), (-0.1, -0.3), (-0.1, -0.4)),
    star=((-0.3, 1.5), (0.0, 0.0), (0.1, -1.5), (0.1, -2.2)),
)
# Lensed supernovae of survey samples: z ~ 0.5–1.2 and seen in at least one epoch (a type Ia
# at z = 1.4 peaks near 25.5 mag unlensed, far below a single epoch's depth).
_LENSED_SN_Z = (0.5, 1.2)
# ... and bright enough against the lens galaxy beneath to show in an aperture light curve: at
# some epoch and band its brightest image reaches 3 % of the galaxy's flux (redrawn up to 400
# times: positions near the caustics magnify; the brightest draw is kept otherwise).
_SN_CONTRAST = 0.03
_DEFLECTOR = DeflectorConfig(z_range=(0.2, 0.7), theta_e_range_arcsec=(0.8, 2.5))
_SOURCE = LensedSourceConfig(
    z_range=(0.8, 1.6), magnitude_range=(21.0, 25.0), r_sersic_range_arcsec=(0.1, 0.6)
)


def _decam(name: str, seeing, sky, zero_point: float, exposure_s: float) -> TransientBandConfig:
    return TransientBandConfig(
        name=name,
        exposure_time_s=exposure_s,
        magnitude_zero_point=zero_point,
        read_noise_e=7.0,
        ccd_gain=6.083,
        seeing_fwhm_range_arcsec=seeing,
        sky_brightness_range_mag_arcsec2=sky,
    )


def _decam_bands(exposure_s: float) -> tuple[TransientBandConfig, ...]:
    return (
        _decam("g", (0.9, 1.6), (21.5, 22.5), 26.58, exposure_s),
        _decam("r", (0.8, 1.4), (20.6, 21.6), 26.78, exposure_s),
        _decam("i", (0.75, 1.3), (19.4, 20.4), 26.75, exposure_s),
        _decam("z", (0.7, 1.25), (18.2, 19.2), 26.48, exposure_s),
    )


def _des_like(
    name: str, cadence_days: float, exposure_s: float, detection_limit_mag: float
) -> TransientsConfig:
    span = 14 * cadence_days
    return TransientsConfig(
        preset=name,
        instrument=TransientSurveyConfig(
            name=name.removeprefix("transients_"),
            bands=_decam_bands(exposure_s),
            n_epochs=15,
            cadence_days=cadence_days,
        ),
        deflector=_DEFLECTOR,
        source=_SOURCE,
        supernova=SupernovaConfig(
            explosion_window_days=(-40.0, span),
            lensed_z_range=_LENSED_SN_Z,
            detection_limit_mag=detection_limit_mag,
            detection_contrast=_SN_CONTRAST,
            max_detection_tries=400,
        ),
        colours=_COLOURS,
    )


TRANSIENT_PRESETS.add("transients_des_deep", _des_like("transients_des_deep", 7.0, 200.0, 24.0))
TRANSIENT_PRESETS.add("transients_desi_dot", _des_like("transients_desi_dot", 3.0, 90.0, 23.5))


def _lsst(name: str, seeing, sky, zero_point: float) -> TransientBandConfig:
    return TransientBandConfig(
        name=name,
        exposure_time_s=15.0,
        num_exposures=2,
        magnitude_zero_point=zero_point,
        read_noise_e=10.0,
        ccd_gain=2.3,
        seeing_fwhm_range_arcsec=seeing,
        sky_brightness_range_mag_arcsec2=sky,
    )


TRANSIENT_PRESETS.add(
    "transients_lsst_wide",
    TransientsConfig(
        preset="transients_lsst_wide",
        instrument=TransientSurveyConfig(
            name="lsst_wide",
            num_pix=45,
            pixel_scale_arcsec=0.2,
            bands=(
                _lsst("g", (0.6, 1.0), (21.8, 22.7), 28.30),
                _lsst("r", (0.55, 0.95), (20.7, 21.6), 28.13),
                _lsst("i", (0.55, 0.9), (20.0, 20.9), 27.79),
                _lsst("z", (0.5, 0.9), (19.1, 20.0), 27.40),
            ),
            n_epochs=15,
            cadence_days=10.0,
        ),
        deflector=_DEFLECTOR,
        source=_SOURCE,
        supernova=SupernovaConfig(
            explosion_window_days=(-40.0, 140.0),
            lensed_z_range=_LENSED_SN_Z,
            detection_limit_mag=24.0,
            detection_contrast=_SN_CONTRAST,
            max_detection_tries=400,
        ),
        colours=_COLOURS,
    ),
)


def get_transient_preset(name: str) -> TransientsConfig:
    return TRANSIENT_PRESETS.get(name)
