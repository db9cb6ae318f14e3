"""Noise models (lenstronomy's CCD model and DeepLense Model I counts), one image per generator.

Images are in e-/s per pixel for the CCD model, so every σ below is in e-/s.
"""

from __future__ import annotations

import numpy as np
from lenstronomy.Util.data_util import bkg_noise, magnitude2cps


def ccd_background_sigma(
    pixel_scale_arcsec: float,
    exposure_time_s: float | np.ndarray,
    num_exposures: int | np.ndarray,
    sky_brightness_mag_arcsec2: float | np.ndarray,
    magnitude_zero_point: float | np.ndarray,
    read_noise_e: float | np.ndarray,
) -> np.ndarray:
    """Gaussian background σ per pixel (e-/s) from sky, read noise and the total exposure:
    lenstronomy's ``SingleBand.background_noise`` (``data_util.bkg_noise`` of the sky in e-/s
    per arcsec²). Broadcasts over arrays of bands or epochs."""
    sky_cps = magnitude2cps(
        np.asarray(sky_brightness_mag_arcsec2, dtype=np.float64), magnitude_zero_point
    )
    return np.asarray(
        bkg_noise(read_noise_e, exposure_time_s, sky_cps, pixel_scale_arcsec, num_exposures),
        dtype=np.float64,
    )


def add_ccd_noise(
    image: np.ndarray,
    rng: np.random.Generator,
    background_sigma: float | np.ndarray,
    exposure_s: float | np.ndarray,
) -> np.ndarray:
    """lenstronomy's ``noise_for_model``: Gaussian background plus Gaussian-approximated Poisson
    noise of the flux, σ = sqrt(max(image·t, 0))/t, for an image in e-/s."""
    background = rng.standard_normal(image.shape) * background_sigma
    shot = rng.standard_normal(image.shape) * (
        np.sqrt(np.maximum(image * exposure_s, 0.0)) / exposure_s
    )
    return image + background + shot


def add_count_noise(
    image: np.ndarray, rng: np.random.Generator, background_rms: float, exposure_s: float
) -> np.ndarray:
    """DeepLense Model I: counts = Poisson(max(t·(image + n_shot + n_bkg), 0)), integer-valued.

    n_shot ~ N(0, |image|/t) and n_bkg ~ N(0, background_rms²), as DeepLenseSim's ``simple_sim``.
    """
    shot = rng.standard_normal(image.shape) * np.sqrt(np.abs(image) / exposure_s)
    background = rng.standard_normal(image.shape) * background_rms
    expected = np.clip(exposure_s * (image + shot + background), 0.0, None)
    return rng.poisson(expected).astype(np.float64)
