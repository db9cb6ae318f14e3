"""Colour composites of multi-band cutouts for display (Lupton et al. 2004, PASP 116, 133).

``data.gallery.display_stretch`` maps the first three channels to R, G, B, which for u, g, r, i
cutouts shows the bluest band as red and ignores the bands' different zero points. Here the three
reddest bands become R, G, B (bands are listed blue to red), each is put on a common flux-density
scale with its zero point, and the arcsinh stretch acts on the mean intensity so colours survive.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_TINY = 1e-30


def colour_composite(
    image: np.ndarray,
    zero_points: Sequence[float] | None = None,
    softening: float = 8.0,
    percentile: float = 99.5,
) -> np.ndarray:
    """[bands, H, W] in e-/s → [H, W, 3] RGB in 0..1 (grey for one band).

    ``zero_points`` (mag giving 1 e-/s per band) rescale bands to AB flux density; the
    ``percentile`` of the mean intensity maps to the top of the arcsinh stretch.
    """
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 3 or data.shape[0] < 1:
        raise ValueError(f"expected an image [bands, H, W], got shape {data.shape}")
    if zero_points is not None:
        zp = np.asarray(zero_points, dtype=np.float64)
        if zp.shape != (data.shape[0],):
            raise ValueError(f"need one zero point per band ({data.shape[0]}), got {zp.shape}")
        data = data * 10.0 ** (-0.4 * (zp - zp.max()))[:, None, None]
    n = data.shape[0]
    if n >= 3:
        rgb = data[[n - 1, n - 2, n - 3]]
    elif n == 2:
        rgb = np.stack([data[1], 0.5 * (data[0] + data[1]), data[0]])
    else:
        rgb = np.repeat(data, 3, axis=0)
    rgb = np.clip(rgb, 0.0, None)
    intensity = rgb.mean(axis=0)
    scale = np.percentile(intensity, percentile)
    if scale <= 0:
        scale = max(float(intensity.max()), _TINY)
    x = intensity / scale
    stretch = np.arcsinh(softening * x) / np.arcsinh(softening)
    factor = np.where(x > 0, stretch / np.maximum(x, _TINY), 0.0)
    out = rgb / scale * factor
    out = out / np.maximum(out.max(axis=0), 1.0)
    return np.moveaxis(np.clip(out, 0.0, 1.0), 0, -1)
