"""Pixel grids in arcsec and the padding that keeps per-image tensor work batch-independent."""

from __future__ import annotations

import numpy as np
import torch

# Per-image pixel vectors are padded to a multiple of this many values, so vectorised kernels
# treat every image alike whatever the batch (bitwise-reproducible renders).
PAD = 64


def pixel_grid_arcsec(num_pix: int, pixel_scale_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x along columns, y along rows), centred on the optical axis.

    Matches lenstronomy's ``make_grid_with_coordtransform(..., inverse=False)``, as DeepLenseSim.
    """
    axis = (np.arange(num_pix) - (num_pix - 1) / 2.0) * pixel_scale_arcsec
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def supersampled_grid_arcsec(
    num_pix: int, pixel_scale_arcsec: float, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel centres of an s×s sub-grid per pixel (lenstronomy's ``supersampling_factor``)."""
    n = num_pix * factor
    axis = ((np.arange(n) + 0.5) / factor - 0.5 - (num_pix - 1) / 2.0) * pixel_scale_arcsec
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def padded_flat(values: np.ndarray, multiple: int = PAD) -> np.ndarray:
    """``values`` flattened and zero-padded to a multiple of ``multiple`` entries."""
    out = np.zeros(-(-values.size // multiple) * multiple)
    out[: values.size] = values.ravel()
    return out


def bin_supersampled(fine: torch.Tensor, num_pix: int, factor: int) -> torch.Tensor:
    """Average s×s sub-pixels: [..., C, P_fine_padded] → [..., C, H, W] (fixed order of adds)."""
    side = num_pix * factor
    grid = fine[..., : side * side].reshape(*fine.shape[:-1], side, side)
    if factor == 1:
        return grid.contiguous()
    out = grid[..., 0::factor, 0::factor].clone()
    for a in range(factor):
        for c in range(factor):
            if a or c:
                out.add_(grid[..., a::factor, c::factor])
    return out.mul_(1.0 / (factor * factor))
