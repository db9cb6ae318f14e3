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
