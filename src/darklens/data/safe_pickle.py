"""Read ``.npy`` files, including pickled object arrays, without running arbitrary code.

``np.load(allow_pickle=True)`` executes whatever the pickle inside a file says, so a downloaded
dataset could run commands on the reader's machine. DeepLense axion files are object arrays
``[image, axion_mass]`` that need pickle, so here the ``.npy`` header is parsed directly and the
payload goes through a restricted unpickler that can only rebuild numpy arrays, dtypes and
scalars. Everything else (``os.system``, ``builtins.eval``, ``io.open``, ...) is refused before
it is ever called.

Allowed globals are exactly what numpy emits when pickling object arrays holding arrays and
scalars: ``numpy.ndarray``, ``numpy.dtype`` and ``multiarray._reconstruct`` / ``multiarray.scalar``
under both the numpy 2 module name (``numpy._core.multiarray``) and the numpy 1.x one
(``numpy.core.multiarray``). Python floats, ints, lists and tuples need no globals at all.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

try:  # numpy >= 1.26 ships numpy._core (numpy 2 moved multiarray there)
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy without numpy._core
    from numpy.core import multiarray as _multiarray

# (module, name) → what the restricted unpickler may return; readers that allow more extend it.
NUMPY_PICKLE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
}

# npy format versions whose header we parse ourselves; np.save writes 1.0 (2.0 for huge headers).
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class NpyReadError(ValueError):
    """A file is not a readable ``.npy`` array (corrupt, truncated or unsupported)."""

    def __init__(self, path: str | Path, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class UnsafePickleError(NpyReadError):
    """A pickled payload asked for something other than numpy arrays and scalars."""

    def __init__(self, path: str | Path, global_name: str) -> None:
        allowed = "only numpy arrays and scalars are allowed"
        super().__init__(
            path,
            f"refusing to unpickle {global_name}: {allowed}",
            f"refusing to unpickle {global_name} from {path}: {allowed} (the file may be "
            "malicious; never open it with np.load(allow_pickle=True))",
        )
        self.global_name = global_name


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose only reachable globals are the numpy array/scalar constructors."""

    def __init__(self, file: IO[bytes], path: Path) -> None:
        # latin1 lets numpy rebuild arrays pickled by Python 2 (their buffers are byte strings).
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return NUMPY_PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(self._path, f"{module}.{name}") from None


def load_npy_safely(path: str | Path) -> np.ndarray:
    """Load one ``.npy`` file; object arrays are rebuilt without executing arbitrary pickles.

    Numeric files load with ``allow_pickle=False``. Object arrays (dtype ``O``) come back as
    object arrays whose elements are numpy arrays, numpy scalars or plain Python values.
    Raises :class:`NpyReadError` for anything unreadable and :class:`UnsafePickleError` when
    the pickle asks for any other callable or class.
    """
    path = Path(path)
    try:
        with path.open("rb") as fp:
            return _read(fp, path)
    except NpyReadError:
        raise
    except OSError as err:
        raise NpyReadError(path, f"cannot read file: {err.strerror or err}") from err


def _read(fp: IO[bytes], path: Path) -> np.ndarray:
    try:
        version = np.lib.format.read_magic(fp)
    except ValueError as err:
        raise NpyReadError(path, f"not a .npy file ({err})") from None
    reader = _HEADER_READERS.get(version)
    if reader is None:  # rare format 3.0: numpy reads numeric data itself, never pickles
        fp.seek(0)
        return _read_numeric(fp, path)
    try:
        shape, _fortran_order, dtype = reader(fp)
    except ValueError as err:
        raise NpyReadError(path, f"corrupt .npy header ({err})") from None
    if not dtype.hasobject:
        fp.seek(0)
        return _read_numeric(fp, path)
    return _read_object(fp, path, shape, dtype)


def _read_numeric(fp: IO[bytes], path: Path) -> np.ndarray:
    try:
        return np.lib.format.read_array(fp, allow_pickle=False)
    except ValueError as err:
        raise NpyReadError(path, f"truncated or corrupt array data ({err})") from None


def _read_object(fp: IO[bytes], path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    try:
        array = _NumpyOnlyUnpickler(fp, path).load()
    except UnsafePickleError:
        raise
    except Exception as err:  # a malformed pickle can fail in many ways; all mean "corrupt"
        raise NpyReadError(
            path, f"truncated or corrupt pickled payload ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape) or array.dtype != dtype:
        found = (
            f"{array.dtype} array of shape {array.shape}"
            if isinstance(array, np.ndarray)
            else type(array).__name__
        )
        raise NpyReadError(
            path, f"header promises a {dtype} array of shape {tuple(shape)} but holds a {found}"
        )
    return array
