"""Per-band CCD noise (lenstronomy's model, :mod:`darklens.simulate.func.noise`) and the
signal-to-noise of the lensed source under it."""

from __future__ import annotations

import numpy as np

from darklens.simulate.func.noise import add_ccd_noise
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
    model: np.ndarray,
    rng: np.random.Generator,
    background: np.ndarray,
    exposure: np.ndarray,
) -> np.ndarray:
    """Noisy float32 image [bands, H, W] from a noiseless one, band by band with one generator."""
    bands = [
        add_ccd_noise(model[b].astype(np.float64), rng, background[b], exposure[b])
        for b in range(model.shape[0])
    ]
    return np.stack(bands).astype(np.float32)


def lensed_snr(
    source_model: np.ndarray, model: np.ndarray, background: np.ndarray, exposure: np.ndarray
) -> np.ndarray:
    """Matched-filter S/N of the lensed source per band: sqrt(Σ_pixels s² / σ²), with
    σ² = background² + max(model, 0)/t the variance of lenstronomy's noise for the full image."""
    s = source_model.astype(np.float64)
    variance = background[:, None, None] ** 2 + np.maximum(model, 0.0) / exposure[:, None, None]
    return np.sqrt(np.array([np.sum(s[b] ** 2 / variance[b]) for b in range(s.shape[0])]))
