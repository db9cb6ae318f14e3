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

- ``lensfind_lsst`` (Rubin LSST-like 10-year coadd, g, r, i as LensPop's LSST survey): 0.2″
  pixels, 64×64, read noise 10 e-, gain 2.3, and per band the exposures (15 s × 200 / 460 /
  460), sky (22.26, 21.2, 20.48 mag/arcsec²), zero points (28.30, 28.13, 27.79) and median
  seeing (0.77″, 0.73″, 0.71″) of lenstronomy's ``LSST(coadd_years=10)`` configuration.

Populations (see the config classes for every relation and its source): deflectors and sources
as Collett (2015) and LensPop draw them, lenses labelled by the ``lenspop`` definition (μ ≥ 3,
arc S/N ≥ 20, resolved). The deflectors' colour terms m_b − M_r − DM(z) (K-correction and colour
of LensPop's 10 Gyr, solar-metallicity Bruzual & Charlot SED) are the medians, per Δz = 0.1, of
the lens galaxies in LensPop's public forecast catalogues (``lenses_Euclid.txt`` for VIS,
``lenses_LSSTc.txt`` for g, r, i; github.com/tcollett/LensPop) after removing its M_r(σ); KiDS
u is taken as g + 1.7 (the red sequence's u − g; Strateva et al. 2001, AJ 122, 1861) and HSC
g, r, i as SDSS's.

Colours of everything else (``m_band − m_ref``, drawn along a sequence): bulges and tidal
shells are old populations (g − r ≈ 1.1–1.8, r − i ≈ 0.4–0.9, u − r ≈ 2.4–3.3 at z ≈ 0.2–0.8);
blue galaxies are star-forming sources at z ≈ 1–3 with flat spectra; stars run from A-type
(u − r ≈ 0.75, g − r ≈ −0.25) to M dwarfs (g − r ≈ 1.5, r − i ≈ 1.5). All are approximate
SDSS-like AB colours.
"""

from __future__ import annotations

from darklens.registry import Registry
from darklens.simulate.lensfind.config import (
    BandConfig,
    ColourConfig,
    DeflectorPopulationConfig,
    LensFindConfig,
    SourcePopulationConfig,
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


_lsst_band = _camera(read_noise_e=10.0, ccd_gain=2.3)

# Deflector colour terms m_b − M_r − DM(z) at z = 0.0, 0.1, ..., 1.7 (see the module docstring).
_TERM_REDSHIFTS = tuple(round(0.1 * k, 1) for k in range(18))
_ETG_TERMS = {
    "VIS": (
        -0.27,
        -0.2,
        -0.13,
        -0.02,
        0.13,
        0.33,
        0.57,
        0.85,
        1.07,
        1.34,
        1.63,
        1.99,
        2.3,
        2.7,
        3.01,
        3.29,
        3.65,
        3.9,
    ),
    "g": (
        0.76,
        1.29,
        1.81,
        2.3,
        2.71,
        3.08,
        3.51,
        4.1,
        4.76,
        5.37,
        5.75,
        6.13,
        6.21,
        6.25,
        6.29,
        6.32,
        6.33,
        6.27,
    ),
    "r": (
        0.02,
        0.17,
        0.32,
        0.51,
        0.77,
        1.22,
        1.64,
        2.09,
        2.31,
        2.59,
        2.9,
        3.36,
        3.87,
        4.4,
        4.9,
        5.12,
        5.62,
        5.79,
    ),
    "i": (
        -0.28,
        -0.25,
        -0.21,
        -0.12,
        0.03,
        0.15,
        0.31,
        0.56,
        0.93,
        1.35,
        1.66,
        1.98,
        2.13,
        2.37,
        2.61,
        2.89,
        3.34,
        3.78,
    ),
}
_ETG_TERMS["u"] = tuple(round(g + 1.7, 2) for g in _ETG_TERMS["g"])

_RED_SDSS = {"u": (2.4, 3.3), "g": (1.1, 1.8), "r": (0.0, 0.0), "i": (-0.4, -0.9)}
_BLUE_SDSS = {"u": (0.3, 1.2), "g": (0.1, 0.6), "r": (0.0, 0.0), "i": (0.0, -0.3)}
_STAR_SDSS = {"u": (0.75, 4.0), "g": (-0.25, 1.5), "r": (0.0, 0.0), "i": (0.15, -1.5)}


def _relative(table: dict[str, tuple[float, float]], bands: tuple[str, ...], ref: str):
    """Colours m_b − m_ref from an r-referenced table."""
    base = table[ref]
    return tuple((table[b][0] - base[0], table[b][1] - base[1]) for b in bands)


def _sdss_colours(bands: tuple[str, ...], ref: str) -> ColourConfig:
    return ColourConfig(
        red_galaxy=_relative(_RED_SDSS, bands, ref),
        blue_galaxy=_relative(_BLUE_SDSS, bands, ref),
        star=_relative(_STAR_SDSS, bands, ref),
    )


def _add_preset(
    name: str,
    instrument: SurveyConfig,
    colours: ColourConfig,
    faintest_source: float = SourcePopulationConfig.magnitude_range[1],
) -> None:
    """Register ``name``: a survey and its colour sequences with the literature populations
    (deflector colour terms picked by band name); sources down to ``faintest_source``."""
    deflector = DeflectorPopulationConfig(
        colour_term_redshifts=_TERM_REDSHIFTS,
        colour_terms=tuple(_ETG_TERMS[band] for band in instrument.band_names),
    )
    low = SourcePopulationConfig.magnitude_range[0]
    source = SourcePopulationConfig(magnitude_range=(low, faintest_source))
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
    _sdss_colours(("u", "g", "r", "i"), "r"),
    # KiDS is ~1.5 mag shallower than LSST: no source fainter than 27 makes a lenspop lens here
    # (the faintest of 2,000 had r = 26.x, BENCHMARKS.md), and skipping them halves the draws.
    faintest_source=27.0,
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
    _sdss_colours(("g", "r", "i"), "i"),
)
_add_preset(
    "lensfind_lsst",
    SurveyConfig(
        name="lsst_10yr",
        num_pix=64,
        pixel_scale_arcsec=0.2,
        bands=(
            _lsst_band("g", (0.65, 0.9), 15.0, 200, 22.26, 28.30),
            _lsst_band("r", (0.6, 0.85), 15.0, 460, 21.2, 28.13),
            _lsst_band("i", (0.6, 0.85), 15.0, 460, 20.48, 27.79),
        ),
        reference_band="i",
    ),
    _sdss_colours(("g", "r", "i"), "i"),
)


def get_lensfind_preset(name: str) -> LensFindConfig:
    return LENSFIND_PRESETS.get(name)
