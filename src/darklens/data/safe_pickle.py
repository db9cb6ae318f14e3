"""Read ``.npy`` files, including pickled object arrays, without running or trusting their pickle.

``np.load(allow_pickle=True)`` executes whatever the pickle inside a file says. Even a pickle
that names only numpy's own constructors can crash the reader: ``numpy.dtype.__setstate__`` and
``multiarray.scalar`` trust the bytes they are given (a dtype whose flags are rewritten by a
BUILD opcode makes ``scalar`` read 8 attacker-chosen bytes as an object pointer), and a file of
thousands of nested object arrays overflows the C stack when freed. So here no pickle machinery
of Python or numpy ever sees the payload: the opcode stream is read with
:func:`pickletools.genops` and interpreted by a small stack machine that accepts exactly the
structures the community's files hold and builds every object itself:

* numpy arrays of plain numeric dtypes (bool, int, uint, float, complex), built with
  ``np.frombuffer`` from a byte string whose length must equal the declared shape times the item
  size; object arrays only from a list of already-built objects (never from bytes);
* numpy scalars of those dtypes, and Python ``int``, ``float``, ``bool`` and ``None``;
* for metadata (:data:`METADATA`): also ``str``, ``bytes``, ``list``, ``tuple``, ``dict``
  (``OrderedDict`` becomes a dict), ``set`` and ``frozenset``.

Dtypes are checked to be one of those numeric kinds before any object is built, and the dtype
given to numpy is made here from the type code and byte order, never from the pickled state.
The number of objects, the nesting depth and the bytes allocated are capped (:class:`PickleLimits`).
Everything else (another global, an unknown opcode, a container mutated after being placed in
another, a malformed state tuple) raises :class:`NpyReadError` (:class:`UnsafePickleError` when
the payload names a callable or class outside the list), the one documented error.

DeepLense axion files are ``np.save(np.array([image, axion_mass], dtype=object))``; DeepGraviLens
``mds`` files are object arrays of dicts: both load here. Protocols 0–4 are read (numpy writes 3
or 4; files from Python 2 with ``numpy.core.multiarray`` names load too).
"""

from __future__ import annotations

import io
import math
import os
import pickletools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from darklens.guards import SizeLimitError, check_allocation, open_regular_file

# npy format versions whose header we parse ourselves; np.save writes 1.0 (2.0 for huge headers).
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}
_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
ARRAYS = "arrays"
METADATA = "metadata"
# (module, name) → the role it may play; nothing here is ever called.
_GLOBALS: dict[tuple[str, str], str] = {
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    **{(module, "_reconstruct"): "reconstruct" for module in _MULTIARRAY},
    **{(module, "scalar"): "scalar" for module in _MULTIARRAY},
    # Protocol 2 from Python 3 spells bytes as _codecs.encode(text, "latin1") (b"" as bytes()).
    ("_codecs", "encode"): "encode",
    ("builtins", "bytes"): "bytes",
    ("__builtin__", "bytes"): "bytes",
}
_METADATA_GLOBALS: dict[tuple[str, str], str] = {
    ("collections", "OrderedDict"): "ordered_dict",
    ("builtins", "set"): "set",
    ("builtins", "frozenset"): "frozenset",
    ("__builtin__", "set"): "set",
    ("__builtin__", "frozenset"): "frozenset",
}
# Numeric type codes an array or scalar may have: no objects, strings, records, dates or voids.
_NUMERIC_DTYPE = re.compile(r"^(b1|[iu][1248]|f[248]|c(8|16))$")
_OBJECT_DTYPE = "O8"
_BYTE_ORDERS = ("<", ">", "|", "=")


class NpyReadError(ValueError):
    """A file is not a readable ``.npy`` array (corrupt, truncated, unsupported or too large)."""

    def __init__(self, path: str | Path, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class UnsafePickleError(NpyReadError):
    """A pickled payload asked for a callable or class outside the accepted numpy/plain types."""

    def __init__(self, path: str | Path, global_name: str) -> None:
        allowed = "only numpy arrays and scalars are allowed"
        super().__init__(
            path,
            f"refusing to unpickle {global_name}: {allowed}",
            f"refusing to unpickle {global_name} from {path}: {allowed} (the file may be "
            "malicious; never open it with np.load(allow_pickle=True))",
        )
        self.global_name = global_name


@dataclass(frozen=True)
class PickleLimits:
    """Caps on what one pickled payload may build.

    ``max_objects``: values created or referenced (opcodes that push); ``max_depth``: nesting of
    containers and object arrays; ``max_array_bytes``: bytes of all numeric arrays, scalars and
    strings built together (None: the process-wide limit of :mod:`darklens.guards`).
    """

    max_objects: int = 5_000_000
    max_depth: int = 32
    max_array_bytes: int | None = None


class _Corrupt(Exception):
    """Internal: the payload is malformed; carries the reason."""


@dataclass(frozen=True)
class _Global:
    role: str
    name: str


class _Pending:
    """An array or dtype made by REDUCE that waits for its BUILD state."""

    def __init__(self, kind: str, type_code: str | None = None) -> None:
        self.kind = kind  # "array" or "dtype"
        self.type_code = type_code
        self.value: Any = None
        self.built = False


class _CallArgs(tuple):
    """Arguments of a call that name a global; usable only by REDUCE."""


_MARK = object()
_CONTAINERS = (list, dict, tuple, set, frozenset, np.ndarray)


class _Machine:
    """A pickle stack machine that builds only the accepted types (see the module docstring)."""

    def __init__(self, source: Path, profile: str, limits: PickleLimits) -> None:
        self.source = source
        self.globals = dict(_GLOBALS)
        if profile == METADATA:
            self.globals.update(_METADATA_GLOBALS)
        self.metadata = profile == METADATA
        self.limits = limits
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.depth: dict[int, int] = {}  # id(container) -> nesting depth
        self.placed: set[int] = set()  # ids of containers already inside another one
        self.keep: list[Any] = []  # keeps containers alive so their ids stay unique
        self.objects = 0
        self.bytes_built = 0
        self.max_bytes = limits.max_array_bytes

    # -- bookkeeping ------------------------------------------------------------------------------
    def push(self, value: Any) -> None:
        self.objects += 1
        if self.objects > self.limits.max_objects:
            raise _Corrupt(f"more than {self.limits.max_objects:,} objects")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise _Corrupt("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k] is _MARK:
                items = self.stack[k + 1 :]
                del self.stack[k:]
                return items
        raise _Corrupt("no MARK on the stack")

    def charge(self, nbytes: int, what: str) -> None:
        self.bytes_built += nbytes
        check_allocation(self.bytes_built, what, self.source, limit=self.max_bytes)

    def final(self, value: Any) -> Any:
        """``value`` as it may go into a container: built, not a mark or a global."""
        if isinstance(value, _Pending):
            if not value.built:
                raise _Corrupt(f"{value.kind} used before its state was set")
            return value.value
        if value is _MARK or isinstance(value, (_Global, _CallArgs)):
            raise _Corrupt("a marker or global used as a value")
        return value

    def argument(self, value: Any) -> Any:
        """Like :meth:`final`, but a global may be a call argument (``_reconstruct(ndarray,
        ...)``)."""
        return value if isinstance(value, _Global) else self.final(value)

    def new_tuple(self, items: list[Any]) -> tuple:
        if any(isinstance(item, _Global) for item in items):
            return _CallArgs(items)
        return self.register(tuple(items), items) if items else ()

    def register(self, container: Any, children: Any) -> Any:
        """Record a new container's depth from its (final) children; mark them placed."""
        deepest = 0
        for child in children:
            if isinstance(child, _CONTAINERS):
                if child is container:
                    raise _Corrupt("a container holds itself")
                self.placed.add(id(child))
                self.keep.append(child)
                deepest = max(deepest, self.depth.get(id(child), 1))
        depth = max(self.depth.get(id(container), 1), deepest + 1)
        if depth > self.limits.max_depth:
            raise _Corrupt(f"nesting deeper than {self.limits.max_depth} levels")
        if id(container) not in self.depth:
            self.keep.append(container)
        self.depth[id(container)] = depth
        return container

    def mutable(self, container: Any, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(container, kind) or isinstance(container, np.ndarray):
            raise _Corrupt(f"cannot add items to a {type(container).__name__}")
        if id(container) in self.placed:
            raise _Corrupt("a container changed after it was placed in another")
        return container

    def text(self, value: str | bytes) -> Any:
        self.charge(len(value), "a pickled string")
        return value

    # -- running ----------------------------------------------------------------------------------
    def run(self, payload: bytes) -> Any:
        stream = io.BytesIO(payload)
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name == "STOP":
                    break
                self.step(opcode.name, arg)
            else:
                raise _Corrupt("the pickle ends without STOP")
        except (ValueError, OverflowError, MemoryError) as err:  # genops: bad or cut opcodes
            if isinstance(err, (NpyReadError, SizeLimitError)):
                raise
            raise _Corrupt(str(err)) from None
        if len(self.stack) != 1:
            raise _Corrupt(f"{len(self.stack)} values left on the stack at STOP")
        return self.final(self.stack[0])

    def step(self, name: str, arg: Any) -> None:
        handler = _HANDLERS.get(name)
        if handler is None and self.metadata:
            handler = _METADATA_HANDLERS.get(name)
        if handler is None:
            raise _Corrupt(f"opcode {name} is not accepted")
        handler(self, arg)

    # -- globals and calls ------------------------------------------------------------------------
    def global_(self, module: str, name: str) -> None:
        role = self.globals.get((module, name))
        if role is None:
            raise UnsafePickleError(self.source, f"{module}.{name}")
        self.push(_Global(role, f"{module}.{name}"))

    def reduce(self) -> None:
        args = self.pop()
        args = args if isinstance(args, _CallArgs) else self.final(args)
        func = self.pop()
        if not isinstance(func, _Global) or not isinstance(args, tuple):
            raise _Corrupt("REDUCE on something other than an accepted global")
        maker = _REDUCERS.get(func.role)
        if maker is None:
            raise _Corrupt(f"{func.name} cannot be called")
        self.push(maker(self, args))

    def build(self) -> None:
        state = self.final(self.pop())
        target = self.stack[-1] if self.stack else None
        if not isinstance(target, _Pending) or target.built:
            raise _Corrupt("BUILD on something other than a new array or dtype")
        if target.kind == "dtype":
            target.value = _dtype_from_state(target.type_code, state)
        else:
            target.value = self.array_from_state(state)
        target.built = True

    def array_from_state(self, state: Any) -> np.ndarray:
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _Corrupt("array state is not (1, shape, dtype, fortran, data)")
        _, shape, dtype, fortran, data = state
        shape = _check_shape(shape)
        if not isinstance(dtype, np.dtype) or not isinstance(fortran, bool):
            raise _Corrupt("array state has no valid dtype or order flag")
        count = math.prod(shape)
        order = "F" if fortran else "C"
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != count:
                raise _Corrupt(f"object array of {count} items holds {_describe(data)}")
            self.charge(8 * count, "an object array")
            array = np.empty(count, dtype=object)
            for k, item in enumerate(data):
                array[k] = item
            array = array.reshape(shape, order=order)
            return self.register(array, data)
        raw = _raw_bytes(data)
        if len(raw) != count * dtype.itemsize:
            raise _Corrupt(
                f"array of shape {shape} and dtype {dtype} needs {count * dtype.itemsize} bytes, "
                f"has {len(raw)}"
            )
        self.charge(len(raw), "a pickled array")
        return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy(order=order)


def _describe(value: Any) -> str:
    return f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__


def _raw_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):  # Python 2 pickles: byte strings arrive as latin-1 text
        return data.encode("latin1")
    raise _Corrupt(f"array data is a {type(data).__name__}, not bytes")


def _check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise _Corrupt("array shape is not a tuple of at most 32 sizes")
    for size in shape:
        if type(size) is not int or size < 0:
            raise _Corrupt(f"array shape {shape!r} holds a non-size")
    return shape


def _type_code(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin1")
    if not isinstance(value, str):
        raise _Corrupt("dtype code is not a string")
    return value


def _dtype_from_state(type_code: str | None, state: Any) -> np.dtype:
    """A fresh dtype for ``type_code`` with the byte order of ``state``, which must be the plain
    state numpy writes for it (no fields, subarray, names, metadata or custom flags)."""
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
        raise _Corrupt("dtype state is not numpy's (version, byte order, ...) tuple")
    order, subarray, names, fields, elsize, alignment = state[1:7]
    if len(state) == 9 and state[8] is not None:
        raise _Corrupt("dtype metadata is not accepted")
    if (subarray, names, fields) != (None, None, None) or (elsize, alignment) != (-1, -1):
        raise _Corrupt("dtype state describes a structured or flexible type")
    if order not in _BYTE_ORDERS or type(state[7]) is not int:
        raise _Corrupt("dtype state has a bad byte order or flags")
    if type_code == _OBJECT_DTYPE:
        return np.dtype(object)  # flags and everything else come from numpy, never the file
    dtype = np.dtype(type_code)
    if state[7] != 0:
        raise _Corrupt(f"dtype {type_code} has flags {state[7]}; plain numbers have none")
    if dtype.itemsize > 1 and order in "<>":
        dtype = dtype.newbyteorder(order)
    return dtype


# -- REDUCE targets: each returns what the call would, built here ---------------------------------
def _reduce_dtype(machine: _Machine, args: tuple) -> _Pending:
    if len(args) != 3 or not all(isinstance(flag, bool) for flag in args[1:]):
        raise _Corrupt("dtype(...) takes (code, align, copy)")
    code = _type_code(args[0])
    if code != _OBJECT_DTYPE and not _NUMERIC_DTYPE.match(code):
        raise _Corrupt(f"dtype {code!r} is not a plain numeric type")
    return _Pending("dtype", code)


def _reduce_reconstruct(machine: _Machine, args: tuple) -> _Pending:
    if len(args) != 3 or not (isinstance(args[0], _Global) and args[0].role == "ndarray"):
        raise _Corrupt("_reconstruct(...) takes (ndarray, shape, typecode)")
    if _raw_bytes(args[2]) != b"b" or not isinstance(args[1], tuple):
        raise _Corrupt("_reconstruct(...) has unexpected arguments")
    return _Pending("array")


def _reduce_scalar(machine: _Machine, args: tuple) -> Any:
    if len(args) != 2 or not isinstance(args[0], np.dtype):
        raise _Corrupt("scalar(...) takes (dtype, bytes)")
    dtype, raw = args[0], _raw_bytes(args[1])
    if dtype.hasobject:
        raise _Corrupt("object scalars are not accepted")
    if len(raw) != dtype.itemsize:
        raise _Corrupt(f"scalar of dtype {dtype} needs {dtype.itemsize} bytes, has {len(raw)}")
    machine.charge(len(raw), "a pickled scalar")
    return np.frombuffer(raw, dtype=dtype)[0]


def _reduce_collection(kind: type) -> Any:
    def make(machine: _Machine, args: tuple) -> Any:
        if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
            raise _Corrupt(f"{kind.__name__}(...) takes at most one list")
        items = list(args[0]) if args else []
        if kind is dict:
            if not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in items):
                raise _Corrupt("OrderedDict(...) takes a list of pairs")
            return machine.register(_new_dict(items), [v for _, v in items])
        _check_hashable(items)
        return machine.register(kind(items), items)

    return make


def _reduce_encode(machine: _Machine, args: tuple) -> bytes:
    if len(args) != 2 or not isinstance(args[0], str) or args[1] not in ("latin1", "latin-1"):
        raise _Corrupt("_codecs.encode(...) takes (text, 'latin1')")
    try:
        return machine.text(args[0].encode("latin1"))
    except UnicodeEncodeError:
        raise _Corrupt("_codecs.encode(...) text is not latin-1") from None


def _reduce_bytes(machine: _Machine, args: tuple) -> bytes:
    if args:
        raise _Corrupt("bytes(...) is accepted only without arguments")
    return b""


_REDUCERS = {
    "encode": _reduce_encode,
    "bytes": _reduce_bytes,
    "dtype": _reduce_dtype,
    "reconstruct": _reduce_reconstruct,
    "scalar": _reduce_scalar,
    "ordered_dict": _reduce_collection(dict),
    "set": _reduce_collection(set),
    "frozenset": _reduce_collection(frozenset),
}


def _check_hashable(keys: Any) -> None:
    for key in keys:
        if not isinstance(key, (str, bytes, int, float, type(None), np.number, np.bool_)):
            raise _Corrupt(f"a {type(key).__name__} cannot be a key or set item")


def _new_dict(pairs: list) -> dict:
    _check_hashable([k for k, _ in pairs])
    return dict(pairs)


# -- opcode handlers ------------------------------------------------------------------------------
def _number(machine: _Machine, arg: Any) -> None:
    if type(arg) is int and not -(2**63) <= arg < 2**64:
        raise _Corrupt("an integer beyond 64 bits")
    machine.push(arg)


def _bytes(machine: _Machine, arg: bytes) -> None:
    machine.push(machine.text(arg))


def _py2_string(machine: _Machine, arg: bytes | str) -> None:
    value = arg.decode("latin1") if isinstance(arg, bytes) else arg
    machine.push(machine.text(value))  # array data in Python 2 pickles


def _unicode(machine: _Machine, arg: str) -> None:
    machine.push(machine.text(arg))


def _constant(value: Any) -> Any:
    return lambda machine, arg: machine.push(value)


def _tuple_of(n: int) -> Any:
    def handler(machine: _Machine, arg: Any) -> None:
        items = [machine.argument(machine.pop()) for _ in range(n)][::-1]
        machine.push(machine.new_tuple(items))

    return handler


def _tuple(machine: _Machine, arg: Any) -> None:
    machine.push(machine.new_tuple([machine.argument(v) for v in machine.pop_mark()]))


def _new_list(machine: _Machine, arg: Any) -> None:
    machine.push(machine.register([], []))


def _list(machine: _Machine, arg: Any) -> None:
    items = [machine.final(v) for v in machine.pop_mark()]
    machine.push(machine.register(list(items), items))


def _append(machine: _Machine, arg: Any) -> None:
    item = machine.final(machine.pop())
    target = machine.mutable(machine.stack[-1] if machine.stack else None, list)
    machine.register(target, [item]).append(item)


def _appends(machine: _Machine, arg: Any) -> None:
    items = [machine.final(v) for v in machine.pop_mark()]
    target = machine.mutable(machine.stack[-1] if machine.stack else None, list)
    machine.register(target, items).extend(items)


def _new_dict_op(machine: _Machine, arg: Any) -> None:
    machine.push(machine.register({}, []))


def _pairs(items: list) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise _Corrupt("odd number of items for a dict")
    return list(zip(items[::2], items[1::2], strict=True))


def _dict(machine: _Machine, arg: Any) -> None:
    pairs = _pairs([machine.final(v) for v in machine.pop_mark()])
    machine.push(machine.register(_new_dict(pairs), [v for _, v in pairs]))


def _setitems_from(machine: _Machine, pairs: list) -> None:
    target = machine.mutable(machine.stack[-1] if machine.stack else None, dict)
    _check_hashable([k for k, _ in pairs])
    machine.register(target, [v for _, v in pairs]).update(pairs)


def _setitem(machine: _Machine, arg: Any) -> None:
    value = machine.final(machine.pop())
    key = machine.final(machine.pop())
    _setitems_from(machine, [(key, value)])


def _setitems(machine: _Machine, arg: Any) -> None:
    _setitems_from(machine, _pairs([machine.final(v) for v in machine.pop_mark()]))


def _new_set(machine: _Machine, arg: Any) -> None:
    machine.push(machine.register(set(), []))


def _additems(machine: _Machine, arg: Any) -> None:
    items = [machine.final(v) for v in machine.pop_mark()]
    target = machine.mutable(machine.stack[-1] if machine.stack else None, set)
    _check_hashable(items)
    machine.register(target, items).update(items)


def _frozenset(machine: _Machine, arg: Any) -> None:
    items = [machine.final(v) for v in machine.pop_mark()]
    _check_hashable(items)
    machine.push(machine.register(frozenset(items), items))


def _global(machine: _Machine, arg: str) -> None:
    module, _, name = arg.partition(" ")
    machine.global_(module, name)


def _stack_global(machine: _Machine, arg: Any) -> None:
    name, module = machine.pop(), machine.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        raise _Corrupt("STACK_GLOBAL needs two strings")
    machine.global_(module, name)


def _put(machine: _Machine, arg: int) -> None:
    if not machine.stack or machine.stack[-1] is _MARK:
        raise _Corrupt("nothing to memoize")
    machine.memo[arg] = machine.stack[-1]


def _memoize(machine: _Machine, arg: Any) -> None:
    _put(machine, len(machine.memo))


def _get(machine: _Machine, arg: int) -> None:
    if arg not in machine.memo:
        raise _Corrupt(f"memo entry {arg} was never stored")
    value = machine.memo[arg]
    machine.push(value.value if isinstance(value, _Pending) and value.built else value)


def _pop(machine: _Machine, arg: Any) -> None:
    if not machine.stack:
        raise _Corrupt("stack underflow")
    machine.stack.pop()


def _dup(machine: _Machine, arg: Any) -> None:
    if not machine.stack or machine.stack[-1] is _MARK:
        raise _Corrupt("DUP on an empty stack")
    machine.push(machine.stack[-1])


_HANDLERS: dict[str, Any] = {
    "PROTO": lambda machine, arg: None,
    "FRAME": lambda machine, arg: None,
    "MARK": lambda machine, arg: machine.stack.append(_MARK),
    "POP": _pop,
    "DUP": _dup,
    "POP_MARK": lambda machine, arg: machine.pop_mark(),
    "PUT": _put,
    "BINPUT": _put,
    "LONG_BINPUT": _put,
    "MEMOIZE": _memoize,
    "GET": _get,
    "BINGET": _get,
    "LONG_BINGET": _get,
    "NONE": _constant(None),
    "NEWTRUE": _constant(True),
    "NEWFALSE": _constant(False),
    **dict.fromkeys(
        ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"),
        _number,
    ),
    **dict.fromkeys(("BINBYTES", "SHORT_BINBYTES", "BINBYTES8"), _bytes),
    **dict.fromkeys(("STRING", "BINSTRING", "SHORT_BINSTRING"), _py2_string),
    **dict.fromkeys(("UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"), _unicode),
    "EMPTY_TUPLE": _tuple_of(0),
    "TUPLE1": _tuple_of(1),
    "TUPLE2": _tuple_of(2),
    "TUPLE3": _tuple_of(3),
    "TUPLE": _tuple,
    "GLOBAL": _global,
    "STACK_GLOBAL": _stack_global,
    "REDUCE": lambda machine, arg: machine.reduce(),
    "BUILD": lambda machine, arg: machine.build(),
}
_CONTAINER_HANDLERS: dict[str, Any] = {
    "EMPTY_LIST": _new_list,
    "LIST": _list,
    "APPEND": _append,
    "APPENDS": _appends,
    "EMPTY_DICT": _new_dict_op,
    "DICT": _dict,
    "SETITEM": _setitem,
    "SETITEMS": _setitems,
    "EMPTY_SET": _new_set,
    "ADDITEMS": _additems,
    "FROZENSET": _frozenset,
}
_METADATA_HANDLERS = {
    name: _CONTAINER_HANDLERS[name]
    for name in ("EMPTY_DICT", "DICT", "SETITEM", "SETITEMS", "EMPTY_SET", "ADDITEMS", "FROZENSET")
}
_HANDLERS.update(
    {name: h for name, h in _CONTAINER_HANDLERS.items() if name not in _METADATA_HANDLERS}
)


# -- public API -----------------------------------------------------------------------------------
def unpickle_restricted(
    payload: bytes,
    source: str | Path,
    profile: str = ARRAYS,
    limits: PickleLimits | None = None,
) -> Any:
    """Rebuild a pickled value from ``payload`` with the stack machine above; never calls pickle.

    ``profile``: :data:`ARRAYS` (numpy arrays, numpy scalars, numbers, lists and tuples of them)
    or :data:`METADATA` (also strings, dicts and sets). Raises :class:`NpyReadError`
    (:class:`UnsafePickleError` for a global outside the accepted ones) naming ``source``.
    """
    source = Path(source)
    if profile not in (ARRAYS, METADATA):
        raise ValueError(f"unknown profile {profile!r}; choose {ARRAYS!r} or {METADATA!r}")
    machine = _Machine(source, profile, limits or PickleLimits())
    try:
        return machine.run(payload)
    except NpyReadError:
        raise
    except SizeLimitError as err:
        raise NpyReadError(source, f"pickled payload too large ({err.reason})") from None
    except _Corrupt as err:
        raise NpyReadError(source, f"truncated or corrupt pickled payload ({err})") from None
    except Exception as err:  # anything else a malformed stream provokes still means "corrupt"
        raise NpyReadError(
            source, f"truncated or corrupt pickled payload ({type(err).__name__}: {err})"
        ) from None
    finally:
        machine.keep.clear()


def load_npy_safely(path: str | Path, *, max_bytes: int | None = None) -> np.ndarray:
    """Load one ``.npy`` file; object arrays are rebuilt without any pickle machinery.

    Numeric files: the size the header declares must be what the file holds and fit
    ``max_bytes`` (default: the process-wide limit of :mod:`darklens.guards`) and free memory
    before anything is allocated. Object arrays (dtype ``O``) come back as object arrays whose
    elements are numeric numpy arrays, numpy scalars or Python numbers. Raises
    :class:`NpyReadError` for anything unreadable, too large, not a regular file or of another
    structure, and :class:`UnsafePickleError` when the pickle names any other callable or class.
    """
    path = Path(path)
    try:
        with open_regular_file(path) as fp:
            shape, fortran, dtype = read_npy_header(fp, path)
            if not dtype.hasobject:
                return _read_numeric(fp, path, shape, fortran, dtype, max_bytes)
            array = _read_object(fp, path, shape, dtype, ARRAYS, max_bytes)
    except NpyReadError:
        raise
    except SizeLimitError as err:
        raise NpyReadError(path, err.reason) from None
    except (OSError, ValueError) as err:  # includes guards' refusal of FIFOs and devices
        reason = getattr(err, "strerror", None) or str(err)
        raise NpyReadError(path, f"cannot read file: {reason}") from None
    _check_array_items(array, path)
    return array


def load_pickled_npy(path: str | Path, *, max_bytes: int | None = None) -> Any:
    """The value pickled in an object-array ``.npy`` file, with the :data:`METADATA` profile
    (e.g. DeepGraviLens ``mds`` files: an object array of dicts). Raises :class:`NpyReadError`."""
    path = Path(path)
    try:
        with open_regular_file(path) as fp:
            shape, _, dtype = read_npy_header(fp, path)
            if not dtype.hasobject:
                raise NpyReadError(path, f"expected pickled objects (object array), found {dtype}")
            return _read_object(fp, path, shape, dtype, METADATA, max_bytes)
    except NpyReadError:
        raise
    except SizeLimitError as err:
        raise NpyReadError(path, err.reason) from None
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise NpyReadError(path, f"cannot read file: {reason}") from None


def read_npy_header(fp: IO[bytes], path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from a ``.npy`` header; the file is left at the data."""
    try:
        version = np.lib.format.read_magic(fp)
    except ValueError as err:
        raise NpyReadError(path, f"not a .npy file ({err})") from None
    reader = _HEADER_READERS.get(version)
    try:
        if reader is not None:
            return reader(fp)
        return np.lib.format._read_array_header(fp, version)  # format 3.0 (utf-8 field names)
    except Exception as err:  # numpy's header parser raises ValueError, SyntaxError, TokenError...
        raise NpyReadError(path, f"corrupt .npy header ({type(err).__name__}: {err})") from None


def _remaining_bytes(fp: IO[bytes]) -> int:
    return os.fstat(fp.fileno()).st_size - fp.tell()


def _read_numeric(
    fp: IO[bytes],
    path: Path,
    shape: tuple[int, ...],
    fortran: bool,
    dtype: np.dtype,
    max_bytes: int | None,
) -> np.ndarray:
    expected = math.prod(shape) * dtype.itemsize
    available = _remaining_bytes(fp)
    if available < expected:
        raise NpyReadError(
            path,
            f"truncated array data: the header declares shape {tuple(shape)} of {dtype} "
            f"({expected:,} bytes) but only {available:,} bytes follow",
        )
    check_allocation(expected, f"an array of shape {tuple(shape)}", path, limit=max_bytes)
    buffer = bytearray(expected)
    if fp.readinto(buffer) != expected:
        raise NpyReadError(path, "truncated array data")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _read_object(
    fp: IO[bytes],
    path: Path,
    shape: tuple[int, ...],
    dtype: np.dtype,
    profile: str,
    max_bytes: int | None,
) -> Any:
    if dtype != np.dtype(object):
        raise NpyReadError(path, f"unsupported dtype {dtype}: only plain object arrays are read")
    size = _remaining_bytes(fp)
    check_allocation(size, "the pickled payload", path, limit=max_bytes)
    payload = fp.read(size)
    value = unpickle_restricted(payload, path, profile, PickleLimits(max_array_bytes=max_bytes))
    if profile == METADATA:
        return value
    is_array = isinstance(value, np.ndarray)
    if not is_array or value.shape != tuple(shape) or not value.dtype.hasobject:
        found = (
            f"{value.dtype} array of shape {value.shape}"
            if isinstance(value, np.ndarray)
            else type(value).__name__
        )
        raise NpyReadError(
            path, f"header promises a {dtype} array of shape {tuple(shape)} but holds a {found}"
        )
    return value


def _check_array_items(array: np.ndarray, path: Path) -> None:
    """Object arrays of array files hold numeric arrays and single values only (no nesting);
    callers say what they expected of the values (a mass, an image)."""
    if not array.dtype.hasobject:
        return
    for item in array.flat:
        plain = isinstance(item, (int, float, str, bytes, np.number, np.bool_, type(None)))
        if isinstance(item, np.ndarray) and not item.dtype.hasobject:
            continue
        if not plain:
            raise NpyReadError(
                path,
                f"object array holds a {type(item).__name__}; expected numeric arrays and numbers",
            )
