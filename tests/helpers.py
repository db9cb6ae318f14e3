"""Helpers shared by test modules: tiny seeded datasets, hand-assembled pickles and running code in
a child process."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from darklens.data.h5 import DatasetWriter

# Probabilities of one float32 network computed in different batchings (or thread counts) differ
# by a few float32 ulps of the logits; compare them with this, never with float64 tolerances.
FLOAT32_PROBA_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}

# -- pickle opcodes (protocol 2/3), assembled by hand so a test controls every byte --------------
PROTO3 = b"\x80\x03"
MARK, TUPLE, REDUCE, BUILD, STOP = b"(", b"t", b"R", b"b", b"."
TUPLE1, TUPLE2, TUPLE3 = b"\x85", b"\x86", b"\x87"
NONE, TRUE, FALSE = b"N", b"\x88", b"\x89"
EMPTY_LIST, APPEND = b"]", b"a"


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def op_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def op_put(index: int) -> bytes:
    return b"q" + bytes([index])


def op_get(index: int) -> bytes:
    return b"h" + bytes([index])


def op_dtype(code: str, flags: int, byte_order: str = "|") -> bytes:
    """``numpy.dtype(code, False, True)`` followed by BUILD with numpy's state and ``flags``."""
    state = (
        MARK
        + op_int(3)
        + op_str(byte_order)
        + NONE
        + NONE
        + NONE
        + op_int(-1)
        + op_int(-1)
        + op_int(flags)
        + TUPLE
    )
    call = op_global("numpy", "dtype") + op_str(code) + FALSE + TRUE + TUPLE3 + REDUCE
    return call + state + BUILD


def scalar_payload(code: str, data: bytes = b"\x00" * 8, flags: int = 0) -> bytes:
    """``multiarray.scalar(dtype(code), data)``."""
    return (
        PROTO3
        + op_global("numpy._core.multiarray", "scalar")
        + op_dtype(code, flags=flags)
        + op_bytes(data)
        + TUPLE2
        + REDUCE
        + STOP
    )


def doctored_object_scalar_payload() -> bytes:
    """``scalar(dtype('O8') with its flags reset to 0, 8 bytes)``: numpy's own reconstructor
    reads the 8 bytes as an object pointer (issue 12, item 1)."""
    return scalar_payload("O8", b"\x41" * 8)


def doctored_object_array_payload() -> bytes:
    """An object array of 2 built by ``_reconstruct`` + BUILD from 16 raw bytes: the doctored
    dtype compares equal to ``dtype('O')``, so the old shape/dtype check passed."""
    return (
        PROTO3
        + op_global("numpy._core.multiarray", "_reconstruct")
        + op_global("numpy", "ndarray")
        + op_int(0)
        + TUPLE1
        + op_bytes(b"b")
        + TUPLE3
        + REDUCE
        + MARK
        + op_int(1)
        + op_int(2)
        + TUPLE1
        + op_dtype("O8", flags=0)
        + FALSE
        + op_bytes(b"\x41" * 16)
        + TUPLE
        + BUILD
        + STOP
    )


def nested_object_arrays_payload(depth: int) -> bytes:
    """``depth`` object arrays of one element nested in each other, innermost holding 0.0."""
    prefix = (
        PROTO3
        + op_global("numpy._core.multiarray", "_reconstruct")
        + op_put(0)
        + b"0"
        + op_global("numpy", "ndarray")
        + op_put(1)
        + b"0"
        + op_dtype("O8", flags=63)
        + op_put(2)
        + b"0"
    )
    opening = (
        op_get(0)
        + op_get(1)
        + op_int(0)
        + TUPLE1
        + op_bytes(b"b")
        + TUPLE3
        + REDUCE
        + MARK
        + op_int(1)
        + op_int(1)
        + TUPLE1
        + op_get(2)
        + FALSE
        + EMPTY_LIST
    )
    closing = APPEND + TUPLE + BUILD
    return prefix + opening * depth + b"G" + struct.pack(">d", 0.0) + closing * depth + STOP


def write_object_npy(path: Path, payload: bytes, shape: tuple[int, ...] = (2,)) -> Path:
    """A .npy file whose header declares an object array and whose body is ``payload``."""
    header = {"descr": "|O", "fortran_order": False, "shape": shape}
    with path.open("wb") as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        fp.write(payload)
    return path


def run_python(
    code: str, *args: str, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a crash there cannot take the test run with it)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


# -- a tiny lens-finding dataset ------------------------------------------------------------------
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


def quantiles_agree(
    a: np.ndarray, b: np.ndarray, quantiles=(0.25, 0.5, 0.75), max_z: float = 4.0, seed: int = 0
) -> tuple[bool, float]:
    """Whether the quantiles of two samples agree within ``max_z`` bootstrap standard errors
    (200 resamples of each); also the largest z. For broad distributions (e.g. fluxes of a few
    bank galaxies) where a fixed relative tolerance is either loose or flaky."""
    rng = np.random.default_rng(seed)

    def spread(x: np.ndarray) -> np.ndarray:
        draws = rng.choice(x, size=(200, len(x)), replace=True)
        return np.quantile(draws, quantiles, axis=1).std(axis=1)

    error = np.sqrt(spread(a) ** 2 + spread(b) ** 2) + 1e-12
    z = np.abs(np.quantile(a, quantiles) - np.quantile(b, quantiles)) / error
    return bool(z.max() < max_z), float(z.max())
