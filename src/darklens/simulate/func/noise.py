"""Noise models (lenstronomy's CCD model and DeepLense Model I counts).

Two forms: per image with a NumPy generator (``add_*``), and for a whole block of images on the
render device from each image's counter-based noise stream (``*_tensor``,
:mod:`darklens.simulate.func.rng`). Images are in e-/s per pixel for the CCD model, so every σ
below is in e-/s.
"""

from __future__ import annotations

import numpy as np
import torch

from darklens.simulate.func.rng import counter_normal, counter_poisson


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
    from lenstronomy.Util.data_util import bkg_noise, magnitude2cps

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


def _per_image(value: float | np.ndarray | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar, [B] or [B, C] value shaped to broadcast against [B, C, P] (or [B, P])."""
    tensor = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return tensor.reshape(*tensor.shape, *([1] * (like.dim() - tensor.dim())))


def ccd_noise_tensor(
    images: torch.Tensor,
    keys: torch.Tensor,
    background_sigma: float | np.ndarray | torch.Tensor,
    exposure_s: float | np.ndarray | torch.Tensor,
    start: int = 0,
) -> torch.Tensor:
    """lenstronomy's ``noise_for_model`` for a block [B, ...] (e-/s): Gaussian background plus
    Gaussian-approximated Poisson noise of the flux, drawn as one normal of the summed variance
    σ² = background² + max(image, 0)/t. ``background_sigma`` and ``exposure_s`` are scalars or
    per image [B] or per image and channel [B, C]; ``keys`` are the images' noise streams [B]."""
    flat = images.reshape(images.shape[0], -1)
    normal = counter_normal(keys, flat.shape[1], start).to(images.dtype).reshape(images.shape)
    background = _per_image(background_sigma, images)
    exposure = _per_image(exposure_s, images)
    sigma = torch.sqrt(background.square() + images.clamp(min=0.0) / exposure)
    return images + sigma * normal


def count_noise_tensor(
    images: torch.Tensor,
    keys: torch.Tensor,
    background_rms: float,
    exposure_s: np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """DeepLense Model I for a block [B, ...]: counts = Poisson(max(t·(image + n), 0)) with
    n ~ N(0, |image|/t + background_rms²) (DeepLenseSim's shot plus background normals, summed),
    exposure t per image [B]. Float64 counts, integer-valued."""
    flat = images.reshape(images.shape[0], -1).to(torch.float64)
    exposure = torch.as_tensor(exposure_s, dtype=torch.float64, device=images.device)[:, None]
    normal = counter_normal(keys, flat.shape[1]).to(torch.float64)
    sigma = torch.sqrt(flat.abs() / exposure + background_rms**2)
    expected = (exposure * (flat + sigma * normal)).clamp(min=0.0)
    if images.device.type == "cpu":
        counts = torch.from_numpy(_numpy_poisson(keys, expected.numpy()))
    else:
        # Poisson values come after the normals' slots in each image's stream.
        counts = counter_poisson(keys, expected, start=(flat.shape[1] + 1) // 2)
    return counts.reshape(images.shape)


def _numpy_poisson(keys: torch.Tensor, expected: np.ndarray) -> np.ndarray:
    """Poisson counts [B, P] on a CPU: NumPy's sampler (PTRS) with one PCG64 generator per
    image seeded by its noise key, ~200× faster there than the counter-based sampler that a GPU
    uses. Reproducible per (seed, image) on a CPU; CPU and GPU counts are different draws."""
    out = np.empty_like(expected)
    for row, key in enumerate(keys.numpy().view(np.uint64)):
        out[row] = np.random.Generator(np.random.PCG64(int(key))).poisson(expected[row])
    return out
