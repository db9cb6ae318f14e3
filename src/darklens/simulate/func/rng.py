"""Per-image random streams and exact, seeded dataset layouts.

Image i of a dataset draws from its own generators keyed by (seed, i, stream), so its bytes never
depend on the batch size, the number of workers or the order in which blocks finish.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Independent random streams per image: one for the physical parameters, one for the noise.
PARAMS_STREAM, NOISE_STREAM = 0, 1


def image_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random generator for one image and one stream, independent of every other image."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, stream)))


def layout_rng(seed: int, key: int) -> np.random.Generator:
    """A generator for dataset-level draws (splits, label placement), apart from every image's."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0xFFFFFFFF, key)))


def check_split_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Three non-negative train/val/test fractions summing to 1, or ValueError."""
    values = tuple(float(f) for f in fractions)
    if (
        len(values) != 3
        or any(f < 0 for f in values)
        or not math.isclose(sum(values), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {values}"
        )
    return values  # type: ignore[return-value]


def stratified_split_codes(
    labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Split code per image (0 train, 1 val, 2 test) with exact counts in every class.

    Class by class in label order: round(f_train·n_c) train, round(f_val·n_c) val (at most what is
    left), the rest test, placed by one seeded permutation per class.
    """
    train, val, _ = check_split_fractions(fractions)
    codes = np.empty(len(labels), dtype=np.uint8)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_train = round(train * len(members))
        n_val = min(round(val * len(members)), len(members) - n_train)
        per_class = np.full(len(members), 2, dtype=np.uint8)
        per_class[:n_train] = 0
        per_class[n_train : n_train + n_val] = 1
        codes[members] = rng.permutation(per_class)
    return codes
