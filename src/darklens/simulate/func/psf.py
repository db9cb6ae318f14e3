"""Gaussian PSFs in lenstronomy's convention and batch-independent convolution.

lenstronomy convolves ``psf_type='GAUSSIAN'`` images with ``scipy.ndimage.gaussian_filter``: a
sampled Gaussian of σ = FWHM / (2√(2 ln 2)) pixels, cut at radius int(truncation·σ + 0.5),
normalised to 1, edges extended ("nearest"). The same kernel is applied here as two separable
1-D passes written as shifted weighted sums (``conv2d`` picks algorithms by batch size, which
would make an image's bytes depend on its batch).
"""

from __future__ import annotations

import math

import numpy as np
import torch

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian_sigma_px(fwhm_arcsec: float, pixel_scale_arcsec: float) -> float:
    """σ of a Gaussian PSF in pixels."""
    return fwhm_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale_arcsec


def gaussian_kernel_radius_px(
    fwhm_arcsec: float, pixel_scale_arcsec: float, truncation_sigma: float
) -> int:
    """Radius in pixels of the truncated kernel: int(truncation·σ + 0.5)."""
    return int(truncation_sigma * gaussian_sigma_px(fwhm_arcsec, pixel_scale_arcsec) + 0.5)


def gaussian_kernel_1d(
    fwhm_arcsec: float,
    pixel_scale_arcsec: float,
    truncation_sigma: float,
    radius_px: int | None = None,
) -> np.ndarray:
    """Normalised 1-D weights on offsets −radius..radius pixels (float64).

    ``radius_px`` defaults to the kernel's own radius; a larger one pads with zeros so kernels of
    different widths share one length (a smaller one is an error).
    """
    sigma = gaussian_sigma_px(fwhm_arcsec, pixel_scale_arcsec)
    own = int(truncation_sigma * sigma + 0.5)
    radius = own if radius_px is None else radius_px
    if own > radius:
        raise ValueError(f"PSF radius {own} px exceeds the kernel length {radius}")
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.where(np.abs(offsets) <= own, np.exp(-0.5 * (offsets / sigma) ** 2), 0.0)
    return weights / weights.sum()


def convolve_separable(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve [B, C, H, W] with symmetric 1-D kernels along both axes, edges extended.

    ``kernels`` is one kernel [K] for every image, or one per image and channel [B, C, K].
    """
    if kernels.dim() == 1:
        kernels = kernels[None, None, :]
    radius = kernels.shape[-1] // 2
    height, width = images.shape[-2:]
    padded = torch.nn.functional.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = torch.zeros_like(padded[..., :, :width])
    for tap in range(kernels.shape[-1]):
        rows.add_(padded[..., :, tap : tap + width] * kernels[:, :, tap, None, None])
    out = torch.zeros_like(images)
    for tap in range(kernels.shape[-1]):
        out.add_(rows[..., tap : tap + height, :] * kernels[:, :, tap, None, None])
    return out


def gaussian_point_source(
    flux: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    sigma_arcsec: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Surface brightness of a point source of total ``flux`` seen through a Gaussian PSF."""
    r2 = (x - x0).square() + (y - y0).square()
    return (
        flux
        / (2.0 * math.pi * sigma_arcsec.square())
        * torch.exp(-0.5 * r2 / sigma_arcsec.square())
    )
