"""Pixelated light: images of galaxies interpolated at source-plane positions, batched.

The convention is lenstronomy's ``INTERPOL`` light profile: a position (x, y) in arcsec maps to
image pixel coordinates by (u, v) = R(φ) · ((x − x₀) / s, (y − y₀) / s) with
R(φ) = [[cos φ, sin φ], [−sin φ, cos φ]], column = u + (W − 1)/2 and row = v + (H − 1)/2 (rows
follow y); the value is bilinear between the four nearest pixels, with zeros beyond the image
(lenstronomy pads the image with one ring of zeros and clamps outside it). A mirrored image
(``flip``) negates u. Images of any sizes live in one flat tensor with per-image offsets, so a
batch mixes galaxies freely; every operation is elementwise per pixel (batch-independent bytes).
"""

from __future__ import annotations

import torch


def interpolate_images(
    flat: torch.Tensor,
    image: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Bilinear values of each batch item's image at positions (x, y) [B, P] (arcsec).

    ``flat`` [T] holds every image's pixels row by row; ``image`` holds [B, 1] tensors:
    ``offset``, ``height``, ``width`` (int64: where the item's image lies in ``flat``), ``x``,
    ``y`` (centre, arcsec), ``cos``, ``sin`` (of the rotation φ), ``scale`` (arcsec per image
    pixel) and ``flip`` (1 or −1). Returns [B, P] in the images' own units.
    """
    dx = (x - image["x"]) / image["scale"]
    dy = (y - image["y"]) / image["scale"]
    u = (dx * image["cos"] + dy * image["sin"]) * image["flip"]
    v = dy * image["cos"] - dx * image["sin"]
    height, width = image["height"], image["width"]
    col = u + (width - 1).to(u.dtype) * 0.5
    row = v + (height - 1).to(v.dtype) * 0.5
    col0, row0 = torch.floor(col), torch.floor(row)
    frac_col, frac_row = col - col0, row - row0
    col0, row0 = col0.long(), row0.long()

    def tap(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        index = image["offset"] + r.clamp(min=0).minimum(height - 1) * width
        index = index + c.clamp(min=0).minimum(width - 1)
        return flat[index] * inside

    top = (1 - frac_col) * tap(row0, col0) + frac_col * tap(row0, col0 + 1)
    bottom = (1 - frac_col) * tap(row0 + 1, col0) + frac_col * tap(row0 + 1, col0 + 1)
    return (1 - frac_row) * top + frac_row * bottom
