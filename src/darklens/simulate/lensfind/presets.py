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


def _camera(read_noise_e: float, ccd_gain: float):
    """A band maker for one camera: ``band(name, seeing range, exposure s, n exposures,
    sky mag/arcsec², zero point)`` with the camera's read noise (e-) and gain (e-/ADU)."""

    def band(
        name: str,
        seeing: tuple[float, float],
        exposure_s: float,
        n_exposures: int,
        sky: float,
        zero_point: float,
    ) -> BandConfig:
        return BandConfig(
            name=name,
            seeing_fwhm_range_arcsec=seeing,
            exposure_time_s=exposure_s,
            num_exposures=n_exposures,
            sky_brightness_mag_arcsec2=sky,
            magnitude_zero_point=zero_point,
            read_noise_e=read_noise_e,
            ccd_gain=ccd_gain,
        )

    return band


_vis_band = _camera(read_noise_e=4.2, ccd_gain=3.1)
_kids_band = _camera(read_noise_e=5.0, ccd_gain=2.5)  # OmegaCAM
_hsc_band = _camera(read_noise_e=4.5, ccd_gain=3.0)


def _add_preset(
    name: str,
    instrument: SurveyConfig,
    colours: ColourConfig,
    *,
    deflector_magnitude_at_200kms: float,
    k_correction_mag_per_z: float,
    source_magnitudes: tuple[float, float],
) -> None:
    """Register ``name``: a survey, its colour sequences, the lens galaxies' reference-band M at
    σ = 200 km/s and K-term (see DeflectorConfig) and the sources' magnitude range; the rest of
    the population keeps its defaults."""
    deflector = DeflectorConfig(
        absolute_magnitude_at_200kms=deflector_magnitude_at_200kms,
        k_correction_mag_per_z=k_correction_mag_per_z,
    )
    source = LensedSourceConfig(magnitude_range=source_magnitudes)
    config = LensFindConfig(
        preset=name, instrument=instrument, deflector=deflector, source=source, colours=colours
    )
    LENSFIND_PRESETS.add(name, config)


_add_preset(
    "lensfind_space",
    SurveyConfig(
        name="euclid_vis",
        num_pix=101,
        pixel_scale_arcsec=0.1,
        bands=(_vis_band("VIS", (0.18, 0.18), 566.0, 4, 22.3, 25.72),),
        reference_band="VIS",
    ),
    ColourConfig(red_galaxy=((0.0, 0.0),), blue_galaxy=((0.0, 0.0),), star=((0.0, 0.0),)),
    # VIS spans r+i+z: early types are ≈ 0.3 mag brighter than in r, with a smaller K-term.
    deflector_magnitude_at_200kms=-22.3,
    k_correction_mag_per_z=0.6,
    source_magnitudes=(21.5, 28.0),
)
_add_preset(
    "lensfind_ground",
    SurveyConfig(
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
    ColourConfig(
        red_galaxy=((2.4, 3.3), (1.1, 1.8), (0.0, 0.0), (-0.4, -0.9)),
        blue_galaxy=((0.3, 1.2), (0.1, 0.6), (0.0, 0.0), (0.0, -0.3)),
        star=((0.75, 4.0), (-0.25, 1.5), (0.0, 0.0), (0.15, -1.5)),
    ),
    deflector_magnitude_at_200kms=-22.0,
    k_correction_mag_per_z=1.0,
    source_magnitudes=(21.0, 28.0),
)
_add_preset(
    "lensfind_deeplense",
    SurveyConfig(
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
    ColourConfig(
        red_galaxy=((1.5, 2.7), (0.4, 0.9), (0.0, 0.0)),
        blue_galaxy=((0.1, 0.9), (0.0, 0.3), (0.0, 0.0)),
        star=((-0.4, 3.0), (-0.15, 1.5), (0.0, 0.0)),
    ),
    # i band: early types ≈ 0.4 mag brighter than in r; K-correction and evolution cancel more.
    deflector_magnitude_at_200kms=-22.4,
    k_correction_mag_per_z=0.5,
    source_magnitudes=(21.5, 28.5),
)


def get_lensfind_preset(name: str) -> LensFindConfig:
    return LENSFIND_PRESETS.get(name)
