"""Fuzz the pickle-free reader with mutated DeepLense and DeepGraviLens files (issue 12, item 1).

Thousands of valid files (axion pairs, metadata dicts; protocols 2-4; numpy 1 and 2 module
names) are mutated byte by byte, cut, spliced and repeated by hypothesis. Every case must either
load into the documented structure or raise :class:`NpyReadError`, the one documented error. The
cases run in a child interpreter, so a crash (segfault, abort, recursion in a destructor) fails
the test instead of killing the run; hypothesis is derandomized, so every run tries the same
cases.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_python

EXAMPLES = 4000  # per file kind; about 12 s each on one core

_FUZZ = r'''
import io, pickle, sys
from pathlib import Path
import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st
from darklens.data.safe_pickle import NpyReadError, load_npy_safely
from darklens.data.deepgravilens import load_metadata

KIND, EXAMPLES = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)


def npy_bytes(array, protocol):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": "|O", "fortran_order": False, "shape": array.shape}
    )
    out.write(pickle.dumps(array, protocol=protocol))
    return out.getvalue()


def pair(image, mass):
    array = np.empty(2, dtype=object)
    array[0], array[1] = image, mass
    return array


def records(n):
    array = np.empty(n, dtype=object)
    for k in range(n):
        array[k] = {
            "z_lens": float(rng.uniform(0.1, 1.0)), "n_images": int(k), "band": "griz"[k % 4],
            "mag": np.float32(21.5 + k), "flags": [1, 2, None], "peak": np.float64(k) / 3,
        }
    return array


if KIND == "deeplense":
    images = [rng.random((6, 6)), rng.random((1, 5, 5)).astype(np.float32),
              np.arange(20, dtype=np.int16).reshape(4, 5)]
    masses = [2.5e-23, np.float64(1.1e-22), np.float32(3e-23), 7]
    SEEDS = [npy_bytes(pair(i, m), p) for i in images for m in masses for p in (2, 3, 4)]
    SEEDS += [  # numpy 1.x module names (GLOBAL opcodes are text lines in protocols 2 and 3)
        npy_bytes(pair(images[0], m), p).replace(b"numpy._core.", b"numpy.core.")
        for m in masses for p in (2, 3)
    ]
    loader = load_npy_safely
else:
    SEEDS = [npy_bytes(records(n), p) for n in (1, 3) for p in (2, 3, 4)]
    loader = load_metadata


def check_structure(value):
    """What each loader documents it returns."""
    if KIND == "deeplense":
        assert isinstance(value, np.ndarray)
        if value.dtype.hasobject:
            for item in value.flat:
                ok = isinstance(item, (int, float, str, bytes, np.number, np.bool_, type(None)))
                assert ok or (isinstance(item, np.ndarray) and not item.dtype.hasobject), item
    else:
        assert isinstance(value, list) and all(isinstance(d, dict) for d in value)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(0, 0)),
    st.tuples(st.just("drop"), st.integers(0, 10**6), st.integers(1, 16)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.integers(0, 255)),
)


def mutate(data, mutations):
    data = bytearray(data)
    for kind, where, value in mutations:
        at = where % max(len(data), 1)
        if kind == "flip" and data:
            data[at] ^= value
        elif kind == "set" and data:
            data[at] = value
        elif kind == "cut":
            del data[at:]
        elif kind == "drop":
            del data[at : at + value]
        elif kind == "repeat":
            data[at:at] = data[at : at + value]
        elif kind == "insert":
            data[at:at] = bytes([value])
    return bytes(data)


path = Path.cwd() / "case.npy"
outcomes = {"loaded": 0, "refused": 0}


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4))
def case(seed, mutations):
    path.write_bytes(mutate(SEEDS[seed], mutations))
    try:
        value = loader(path)
    except NpyReadError:
        outcomes["refused"] += 1
        return
    check_structure(value)
    outcomes["loaded"] += 1


for seed in SEEDS:  # the unmutated files load, equal to what numpy's own reader gives
    path.write_bytes(seed)
    value = loader(path)
    check_structure(value)
    reference = np.load(path, allow_pickle=True)  # our own seeds: safe to unpickle
    if KIND == "deeplense":
        np.testing.assert_array_equal(value[0], reference[0])
        assert value[0].dtype == reference[0].dtype and value[1] == reference[1]
        assert type(value[1]) is type(reference[1])
    else:
        assert value == list(reference)
case()
print(outcomes["loaded"], outcomes["refused"])
'''


def _fuzz(kind: str, folder: Path) -> tuple[int, int]:
    result = run_python(_FUZZ, kind, str(EXAMPLES), timeout=300, cwd=folder)
    assert result.returncode == 0, (
        f"fuzzing crashed or failed (status {result.returncode}):\n{result.stderr[-3000:]}"
    )
    loaded, refused = map(int, result.stdout.split())
    return loaded, refused


def test_mutated_deeplense_pairs_load_or_raise_the_documented_error(tmp_path):
    loaded, refused = _fuzz("deeplense", tmp_path)
    assert loaded + refused >= EXAMPLES
    assert loaded > 0 and refused > 0  # both outcomes were reached, so the mutations bite


def test_mutated_deepgravilens_metadata_load_or_raise_the_documented_error(tmp_path):
    loaded, refused = _fuzz("deepgravilens", tmp_path)
    assert loaded + refused >= EXAMPLES
    assert loaded > 0 and refused > 0
