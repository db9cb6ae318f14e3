"""load_npy_safely: numeric and object .npy files load; anything but numpy objects is refused."""

from __future__ import annotations

import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from darklens.data.safe_pickle import NpyReadError, UnsafePickleError, load_npy_safely
from tests import helpers


def _object_pair(image: np.ndarray, mass: object) -> np.ndarray:
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = image, mass
    return pair


def _write_npy_with_payload(path: Path, payload: bytes, shape=(2,), version=(1, 0)) -> Path:
    """A .npy file whose header declares an object array and whose body is ``payload``."""
    header = {"descr": "|O", "fortran_order": False, "shape": shape}
    with path.open("wb") as fp:
        if version == (1, 0):
            np.lib.format.write_array_header_1_0(fp, header)
        else:
            np.lib.format.write_array_header_2_0(fp, header)
        fp.write(payload)
    return path


class _OpensFile:
    """Pickles to io.open(target, "w"): unpickling it creates ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


class _RunsShell:
    """Pickles to os.system("touch target")."""

    def __init__(self, target: Path) -> None:
        self.command = f"touch {target}"

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(64, dtype=np.float64).reshape(8, 8) / 7,
        np.arange(64, dtype=np.int16).reshape(1, 8, 8),
        np.linspace(0, 1, 192, dtype=np.float32).reshape(8, 8, 3),
    ],
)
def test_numeric_files_load_like_numpy(tmp_path, array):
    path = tmp_path / "image.npy"
    np.save(path, array)
    loaded = load_npy_safely(path)
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, np.load(path, allow_pickle=False))


@pytest.mark.parametrize(
    "mass", [2.5e-23, np.float64(1.1e-22), np.float32(3.0e-23), 7], ids=type
)
def test_object_pair_is_rebuilt(tmp_path, mass):
    image = np.random.default_rng(0).random((8, 8))
    path = tmp_path / "axion.npy"
    np.save(path, _object_pair(image, mass), allow_pickle=True)
    loaded = load_npy_safely(path)
    reference = np.load(path, allow_pickle=True)
    assert loaded.dtype == object and loaded.shape == (2,)
    np.testing.assert_array_equal(loaded[0], reference[0])
    assert type(loaded[1]) is type(reference[1])
    assert loaded[1] == reference[1]


def test_numpy1_module_names_are_accepted(tmp_path):
    image = np.random.default_rng(1).random((8, 8)).astype(np.float32)
    payload = pickle.dumps(_object_pair(image, np.float64(4e-23)), protocol=3)
    legacy = payload.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n" in legacy and b"numpy._core" not in legacy
    loaded = load_npy_safely(_write_npy_with_payload(tmp_path / "old.npy", legacy))
    np.testing.assert_array_equal(loaded[0], image)
    assert loaded[1] == np.float64(4e-23)


def test_format_version_2_header_is_read(tmp_path):
    image = np.ones((8, 8))
    payload = pickle.dumps(_object_pair(image, 1e-23), protocol=3)
    path = _write_npy_with_payload(tmp_path / "v2.npy", payload, version=(2, 0))
    loaded = load_npy_safely(path)
    np.testing.assert_array_equal(loaded[0], image)
    assert loaded[1] == 1e-23


def test_malicious_open_is_refused_and_never_runs(tmp_path):
    created_by_pickle = tmp_path / "created_by_plain_pickle"
    pickle.loads(pickle.dumps(_OpensFile(created_by_pickle), protocol=3)).close()
    assert created_by_pickle.exists(), "fixture must be a working exploit for the test to mean much"

    target = tmp_path / "pwned"
    payload = pickle.dumps(_OpensFile(target), protocol=3)
    path = _write_npy_with_payload(tmp_path / "evil.npy", payload)
    with pytest.raises(UnsafePickleError) as info:
        load_npy_safely(path)
    message = str(info.value)
    assert "refusing to unpickle io.open" in message
    assert str(path) in message and "only numpy arrays and scalars are allowed" in message
    assert not target.exists()


def test_malicious_shell_call_inside_a_real_pair_is_refused(tmp_path):
    target = tmp_path / "touched"
    image = np.zeros((8, 8))
    array = _object_pair(image, _RunsShell(target))
    path = tmp_path / "evil_pair.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle (posix|nt|os)\.system"):
        load_npy_safely(path)
    assert not target.exists()


def test_other_numpy_callables_are_refused(tmp_path):
    # numpy.load is in an allowed module but is not an array/scalar constructor.
    payload = b"\x80\x03cnumpy\nload\nX\x05\x00\x00\x00x.npyq\x00\x85q\x01Rq\x02."
    path = _write_npy_with_payload(tmp_path / "numpy_load.npy", payload)
    with pytest.raises(UnsafePickleError, match=r"numpy\.load"):
        load_npy_safely(path)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a .npy file"),
        (b"this is a text file, not numpy data", "not a .npy file"),
    ],
)
def test_non_npy_bytes_are_rejected(tmp_path, content, reason):
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(NpyReadError, match=reason) as info:
        load_npy_safely(path)
    assert str(path) in str(info.value)


def test_truncated_numeric_file_is_rejected(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.ones((16, 16)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(NpyReadError, match="truncated"):
        load_npy_safely(path)


def test_truncated_object_file_is_rejected_as_corrupt_not_unsafe(tmp_path):
    path = tmp_path / "cut_pair.npy"
    np.save(path, _object_pair(np.ones((16, 16)), 1e-23), allow_pickle=True)
    path.write_bytes(path.read_bytes()[:-60])
    with pytest.raises(NpyReadError, match="truncated or corrupt pickled payload") as info:
        load_npy_safely(path)
    assert not isinstance(info.value, UnsafePickleError)


def test_payload_that_contradicts_the_header_is_rejected(tmp_path):
    payload = pickle.dumps(_object_pair(np.ones((8, 8)), 1e-23), protocol=3)
    path = _write_npy_with_payload(tmp_path / "liar.npy", payload, shape=(3,))
    with pytest.raises(NpyReadError, match=r"header promises .* shape \(3,\)"):
        load_npy_safely(path)


def test_plain_pickle_stream_is_not_an_npy(tmp_path):
    path = tmp_path / "plain.npy"
    path.write_bytes(pickle.dumps(np.ones(3)))
    with pytest.raises(NpyReadError, match="not a .npy file"):
        load_npy_safely(path)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.npy"
    with pytest.raises(NpyReadError, match="absent.npy"):
        load_npy_safely(path)



# -- issue 12, item 1: payloads built only from the admitted numpy names crashed the reader -------
_LOAD_IN_CHILD = """
import sys
from darklens.data.safe_pickle import NpyReadError, load_npy_safely
from darklens.data.deepgravilens import load_metadata
loader = load_metadata if sys.argv[2] == "metadata" else load_npy_safely
try:
    loader(sys.argv[1])
except NpyReadError as err:
    print("refused:", err.reason)
else:
    print("loaded")
"""


@pytest.mark.parametrize("loader", ["arrays", "metadata"])
@pytest.mark.parametrize(
    "payload, reason",
    [
        (helpers.doctored_object_scalar_payload, "object scalars are not accepted"),
        (helpers.doctored_object_array_payload, "object array of 2 items holds bytes"),
        (lambda: helpers.nested_object_arrays_payload(200_000), "nesting deeper than 32"),
    ],
    ids=["object-scalar-from-bytes", "object-array-from-bytes", "200k-nested-object-arrays"],
)
def test_crafted_numpy_payloads_are_refused_without_crashing(tmp_path, payload, reason, loader):
    path = helpers.write_object_npy(tmp_path / "crafted.npy", payload(), shape=(2,))
    result = helpers.run_python(_LOAD_IN_CHILD, str(path), loader)
    assert result.returncode == 0, f"the reader crashed (status {result.returncode}): {result}"
    assert result.stdout.startswith("refused:"), result.stdout + result.stderr
    assert reason in result.stdout


def test_nesting_is_capped_but_shallow_nesting_loads(tmp_path):
    shallow = helpers.write_object_npy(
        tmp_path / "shallow.npy", helpers.nested_object_arrays_payload(1), shape=(1,)
    )
    loaded = load_npy_safely(shallow)
    assert loaded.shape == (1,) and loaded[0] == 0.0
    deep = helpers.write_object_npy(
        tmp_path / "deep.npy", helpers.nested_object_arrays_payload(40), shape=(1,)
    )
    with pytest.raises(NpyReadError, match="nesting deeper than"):
        load_npy_safely(deep)


@pytest.mark.parametrize("code", ["U8", "V8", "M8", "S4", "O4"])
def test_non_numeric_dtypes_are_refused_before_anything_is_built(tmp_path, code):
    path = helpers.write_object_npy(tmp_path / "dtype.npy", helpers.scalar_payload(code))
    result = helpers.run_python(_LOAD_IN_CHILD, str(path), "arrays")
    assert result.returncode == 0, f"the reader crashed (status {result.returncode}): {result}"
    assert "not a plain numeric type" in result.stdout, result.stdout + result.stderr


def test_declared_numeric_size_is_checked_before_allocating(tmp_path):
    path = tmp_path / "liar.npy"
    with path.open("wb") as fp:
        header = {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
        np.lib.format.write_array_header_1_0(fp, header)
        fp.write(b"\x00" * 16)
    assert path.stat().st_size < 200
    with pytest.raises(NpyReadError, match=r"declares shape \(100000, 100000\).*only 16 bytes"):
        load_npy_safely(path)


def test_size_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.zeros((64, 64)))
    with pytest.raises(NpyReadError, match="over the 1.0 KiB limit"):
        load_npy_safely(path, max_bytes=1024)


def test_named_pipe_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    try:
        result = helpers.run_python(_LOAD_IN_CHILD, str(fifo), "arrays", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a named pipe hung")
    assert "refused:" in result.stdout and "named pipe" in result.stdout, result


def test_python2_era_pickle_with_byte_strings_loads(tmp_path):
    image = np.arange(6, dtype="<f8").reshape(2, 3)
    payload = (
        b"\x80\x02"
        + helpers.op_global("numpy.core.multiarray", "_reconstruct")
        + helpers.op_global("numpy", "ndarray")
        + helpers.op_int(0) + helpers.TUPLE1 + b"U\x01b" + helpers.TUPLE3 + helpers.REDUCE
        + helpers.MARK + helpers.op_int(1) + helpers.op_int(2) + helpers.op_int(3)
        + helpers.TUPLE2 + helpers.op_dtype("f8", 0, "<") + helpers.FALSE
        + b"T" + len(image.tobytes()).to_bytes(4, "little") + image.tobytes()
        + helpers.TUPLE + helpers.BUILD + helpers.STOP
    )
    path = helpers.write_object_npy(tmp_path / "py2.npy", payload, shape=(2, 3))
    with pytest.raises(NpyReadError, match="holds a float64 array"):
        load_npy_safely(path)  # a numeric array under an object header contradicts it
    from darklens.data.safe_pickle import unpickle_restricted

    np.testing.assert_array_equal(unpickle_restricted(payload, "py2"), image)


def test_bytes_built_from_a_payload_are_capped():
    from darklens.data.safe_pickle import PickleLimits, unpickle_restricted

    pair = _object_pair(np.zeros((64, 64)), 1e-23)
    payload = pickle.dumps(pair, protocol=4)
    with pytest.raises(NpyReadError, match="pickled payload too large"):
        unpickle_restricted(payload, "big.npy", limits=PickleLimits(max_array_bytes=4096))
    with pytest.raises(NpyReadError, match="more than 10 objects"):
        unpickle_restricted(payload, "many.npy", limits=PickleLimits(max_objects=10))
    np.testing.assert_array_equal(unpickle_restricted(payload, "ok.npy")[0], pair[0])
