"""Instrument settings shared by every simulator kind: one filter's CCD terms and survey grids.

:class:`CCDBand` holds lenstronomy's noise terms of one filter (zero point = the AB magnitude
giving 1 e-/s; images are in e-/s per pixel); each kind's band or instrument config derives from
it, so the background σ is computed one way everywhere (:func:`func.noise.ccd_background_sigma`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from darklens.config import Config, require
from darklens.simulate.func.noise import ccd_background_sigma

NOISE_KINDS = ("ccd", "none")


@dataclass(frozen=True)
class CCDBand(Config):
    """One filter's CCD noise terms: exposure per visit and visits, zero point, read noise, gain."""

    name: str = "r"
    exposure_time_s: float = 566.0
    num_exposures: int = 1
    magnitude_zero_point: float = 25.72
    read_noise_e: float = 4.2
    ccd_gain: float = 3.1

    def __post_init__(self) -> None:
        where = f"band {self.name}"
        require(bool(self.name), "band name must not be empty")
        require(self.exposure_time_s > 0, f"{where}: exposure_time_s must be positive")
        require(self.num_exposures >= 1, f"{where}: num_exposures must be >= 1")
        require(self.read_noise_e >= 0, f"{where}: read_noise_e must be >= 0")
        require(self.ccd_gain > 0, f"{where}: ccd_gain must be positive")

    @property
    def total_exposure_s(self) -> float:
        return self.exposure_time_s * self.num_exposures

    def background_sigma_e_per_s(
        self, pixel_scale_arcsec: float, sky_brightness_mag_arcsec2: float | np.ndarray
    ) -> np.ndarray:
        """Gaussian background σ per pixel (e-/s) under a sky of this brightness (mag/arcsec²)."""
        return ccd_background_sigma(
            pixel_scale_arcsec,
            self.exposure_time_s,
            self.num_exposures,
            sky_brightness_mag_arcsec2,
            self.magnitude_zero_point,
            self.read_noise_e,
        )


class SurveyBands:
    """Band lookups for survey configs that hold ``bands`` and a ``reference_band`` name."""

    bands: tuple[Any, ...]
    reference_band: str

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    @property
    def reference_index(self) -> int:
        return self.band_names.index(self.reference_band)


def check_survey_grid(survey: Any, max_num_pix: int) -> None:
    """A multi-band survey's cutout grid, band names, reference band, PSF truncation,
    supersampling and noise kind are usable (``num_pix`` in 8..``max_num_pix``)."""
    require(
        8 <= survey.num_pix <= max_num_pix,
        f"instrument.num_pix must be in 8..{max_num_pix}, got {survey.num_pix}",
    )
    require(survey.pixel_scale_arcsec > 0, "instrument.pixel_scale_arcsec must be positive")
    require(len(survey.bands) >= 1, "instrument.bands needs at least one band")
    names = [b.name for b in survey.bands]
    require(len(set(names)) == len(names), f"band names must be unique, got {names}")
    require(
        survey.reference_band in names,
        f"instrument.reference_band {survey.reference_band!r} is not one of the bands {names}",
    )
    require(survey.psf_truncation_sigma > 0, "instrument.psf_truncation_sigma must be positive")
    require(
        1 <= survey.supersampling <= 8,
        f"instrument.supersampling must be in 1..8, got {survey.supersampling}",
    )
    require(
        survey.noise in NOISE_KINDS,
        f"instrument.noise must be one of {NOISE_KINDS}, got {survey.noise!r}",
    )
