"""Per-band CCD noise (lenstronomy's model, :mod:`darklens.simulate.func.noise`) and the
signal-to-noise of the lensed source under it."""

from __future__ import annotations

import numpy as np
import torch

from darklens.simulate.func.noise import ccd_noise_tensor
from darklens.simulate.lensfind.config import LensFindConfig


def noise_levels(config: LensFindConfig) -> tuple[np.ndarray, np.ndarray]:
    """(background σ [bands] in e-/s per pixel, total exposure [bands] in s)."""
    inst = config.instrument
    sigma = np.array(
        [
            float(b.background_sigma_e_per_s(inst.pixel_scale_arcsec, b.sky_brightness_mag_arcsec2))
            for b in inst.bands
        ]
    )
    exposure = np.array([b.total_exposure_s for b in inst.bands])
    return sigma, exposure


def observe(
    models: torch.Tensor,
    keys: torch.Tensor,
    background: np.ndarray,
    exposure: np.ndarray,
) -> torch.Tensor:
    """Noisy float32 images [B, bands, H, W] from noiseless ones, each image from its own noise
    stream ``keys`` [B], background σ and exposure per band."""
    per_band = (background[None, :], exposure[None, :])
    return ccd_noise_tensor(models, keys, *per_band).to(torch.float32)


def lensed_snr(
    source_models: np.ndarray, models: np.ndarray, background: np.ndarray, exposure: np.ndarray
) -> np.ndarray:
    """Matched-filter S/N of the lensed source per image and band [B, bands]: sqrt(Σ_pixels s²/σ²),
    with σ² = background² + max(model, 0)/t the variance of lenstronomy's noise for the image."""
    s = source_models.astype(np.float64)
    variance = background[:, None, None] ** 2 + np.maximum(models, 0.0) / exposure[:, None, None]
    return np.sqrt(np.sum(s**2 / variance, axis=(-2, -1)))
