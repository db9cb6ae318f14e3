"""Tiny seeded datasets shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.data.h5 import DatasetWriter

LENS_CLASSES = ("non_lens", "lens")
# per split: (non-lenses, lenses)
LENS_SPLIT_SIZES = {"train": (48, 12), "val": (40, 10), "test": (20, 10)}


def _image(is_lens: bool, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """A blob (the lens galaxy), plus for lenses a ring (arcs of the lensed source), and noise."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2 + rng.uniform(-1, 1, size=(2, 1, 1))
    radius = np.hypot(xx, yy)
    image = np.exp(-0.5 * (radius / 1.5) ** 2)
    if is_lens:
        image += 0.8 * np.exp(-0.5 * ((radius - size * 0.3) / 1.0) ** 2)
    return (image + rng.normal(0, 0.1, size=(size, size)))[None]


def make_lens_dataset(path: Path, seed: int = 0) -> Path:
    """1x16x16 blobs (non-lenses) and blobs with rings (lenses), one lens in five in train and
    val, one in three in test (:data:`LENS_SPLIT_SIZES`), in a seeded random order."""
    rng = np.random.default_rng(seed)
    labels, split = [], []
    for code, name in enumerate(("train", "val", "test")):
        n_non, n_lens = LENS_SPLIT_SIZES[name]
        labels += [0] * n_non + [1] * n_lens
        split += [code] * (n_non + n_lens)
    labels = np.array(labels)
    order = rng.permutation(labels.size)
    labels, split = labels[order], np.array(split, dtype=np.uint8)[order]
    images = np.stack([_image(bool(k), rng) for k in labels]).astype(np.float32)
    with DatasetWriter(path, labels.size, images.shape[1:], LENS_CLASSES) as writer:
        writer.write(0, images, labels, split)
    return path


# -- lensed-image statistics (DeepLenseSim reference tests) ---------------------------------------
def radial_profiles(images: np.ndarray) -> np.ndarray:
    """Azimuthal mean of each image in annuli 0.5 px wide about the centre: [N, radii]."""
    n = images.shape[-1]
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    which = (np.hypot(xx, yy) / 0.5).astype(int).ravel()
    counts = np.bincount(which)
    flat = images.reshape(len(images), -1)
    sums = np.stack([np.bincount(which, weights=row, minlength=len(counts)) for row in flat])
    return sums[:, counts > 0] / counts[counts > 0]


def ring_radius_px(images: np.ndarray, min_radius_px: float = 0.0) -> float:
    """Radius (px, to 0.5) of the brightest annulus of the mean image at least ``min_radius_px``
    from the centre (beyond the lens galaxy's light)."""
    first = int(min_radius_px / 0.5)
    return 0.5 * (first + int(np.argmax(radial_profiles(images).mean(axis=0)[first:]))) + 0.25


def mean_ring_radius_px(images: np.ndarray, low_px: float, high_px: float) -> float:
    """Light-weighted mean radius (px) of the mean image between ``low_px`` and ``high_px``
    (steadier than the brightest annulus when the ring is broad)."""
    profile = radial_profiles(images).mean(axis=0)
    radius = 0.5 * np.arange(len(profile)) + 0.25
    inside = (radius >= low_px) & (radius <= high_px)
    return float((radius * profile)[inside].sum() / profile[inside].sum())


def profiles_agree(a: np.ndarray, b: np.ndarray, max_z: float = 5.0) -> tuple[bool, float]:
    """Whether the mean radial profiles of two image sets agree within ``max_z`` sampling σ at
    every radius; also the largest z."""
    pa, pb = radial_profiles(a), radial_profiles(b)
    error = np.sqrt(pa.var(axis=0) / len(pa) + pb.var(axis=0) / len(pb)) + 1e-12
    z = np.abs(pa.mean(axis=0) - pb.mean(axis=0)) / error
    return bool(z.max() < max_z), float(z.max())
