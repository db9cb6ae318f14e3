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


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def simulate_tiny(tmp_path: Path, preset: str, **size) -> Path:
    """A dataset file of a few images of ``preset`` (small grids; splits 0.5/0.25/0.25)."""
    from darklens.simulate.api import simulate

    overrides = {} if preset.startswith("transients") else {"instrument.num_pix": 16}
    path = tmp_path / f"{preset}.h5"
    simulate(preset, path, seed=5, split=(0.5, 0.25, 0.25), overrides=overrides, **size)
    return path
