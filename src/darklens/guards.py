"""Checks made before touching memory or the disk: sizes, special files, paths, full disks.

* **Sizes.** A size declared in a file header (an array shape, a dataset length, a model's image
  size) is checked with :func:`check_allocation` against a limit and against the memory that is
  free before anything is allocated. The limit is :data:`DEFAULT_MAX_BYTES` (8 GiB) unless the
  environment variable ``DARKLENS_MAX_BYTES`` or the CLI's global ``--max-bytes`` option
  (``darklens --max-bytes 2G import ...``) sets another; sizes take K, M, G, T suffixes (powers
  of 1024).
* **Special files.** :func:`open_regular_file` opens without blocking and refuses named pipes,
  devices and sockets (a FIFO in an import folder would otherwise hang the reader forever).
* **Paths.** :func:`resolve_within` resolves a relative path (symlinks too) and refuses it unless
  it stays inside its folder, before anything is written or deleted there.
* **Disk.** :func:`check_free_disk` refuses an output that cannot fit; :func:`describe_os_error`
  turns an I/O error into one line (``no space left on device writing X``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path
from typing import IO

DEFAULT_MAX_BYTES = 8 * 1024**3
MAX_BYTES_ENV = "DARKLENS_MAX_BYTES"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_override: int | None = None


class SizeLimitError(ValueError):
    """An allocation a file asks for is over the limit or the free memory; names the file."""

    def __init__(self, source: str | Path, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = str(source)
        self.reason = reason


class SpecialFileError(ValueError):
    """A path names a named pipe, device or socket, or a folder, where a file was expected."""


class OutsideFolderError(ValueError):
    """A path leads outside the folder it must stay in (``..``, absolute or through a link)."""


class DiskSpaceError(ValueError):
    """An output would not fit in the free space of its file system."""


# -- sizes ---------------------------------------------------------------------------------------
def parse_size(text: str | int) -> int:
    """Bytes from ``"8G"``, ``"512M"``, ``"1.5GiB"`` or a plain number of bytes."""
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise ValueError(
                f"cannot read the size {text!r}: give bytes or a number with K, M, G or T "
                "(e.g. 8G)"
            )
        value = int(float(match[1]) * _UNITS[match[2].upper()])
    if value <= 0:
        raise ValueError(f"a size limit must be positive, got {text!r}")
    return value


def set_max_bytes(limit: int | str | None) -> None:
    """Set the process-wide allocation limit (None: back to the environment or the default)."""
    global _override
    _override = None if limit is None else parse_size(limit)


def max_bytes() -> int:
    """The allocation limit in force: :func:`set_max_bytes`, else ``$DARKLENS_MAX_BYTES``, else
    :data:`DEFAULT_MAX_BYTES`."""
    if _override is not None:
        return _override
    from_env = os.environ.get(MAX_BYTES_ENV)
    if from_env:
        try:
            return parse_size(from_env)
        except ValueError as err:
            raise ValueError(f"{MAX_BYTES_ENV}: {err}") from None
    return DEFAULT_MAX_BYTES


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def available_memory_bytes() -> int | None:
    """Memory the kernel says can be allocated without swapping (None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(
    nbytes: int, what: str, source: str | Path, *, limit: int | None = None
) -> None:
    """Raise :class:`SizeLimitError` if ``nbytes`` for ``what`` (read from ``source``) exceeds
    ``limit`` (default :func:`max_bytes`) or the free memory."""
    limit = max_bytes() if limit is None else limit
    if nbytes > limit:
        raise SizeLimitError(
            source,
            f"{what} needs {human_bytes(nbytes)}, over the {human_bytes(limit)} limit "
            f"(raise it with --max-bytes or ${MAX_BYTES_ENV} if the file is genuine)",
        )
    free = available_memory_bytes()
    if free is not None and nbytes > free:
        raise SizeLimitError(
            source, f"{what} needs {human_bytes(nbytes)} but only {human_bytes(free)} is free"
        )


# -- files ---------------------------------------------------------------------------------------
def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def require_regular_file(path: str | Path) -> None:
    """Raise :class:`SpecialFileError` unless ``path`` (after links) is a regular file;
    FileNotFoundError if it does not exist."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise SpecialFileError(f"{path} is {_kind(mode)}, not a regular file: refusing to read it")


def open_regular_file(path: str | Path) -> IO[bytes]:
    """Open ``path`` for binary reading, refusing named pipes, devices, sockets and folders.

    The file is opened non-blocking (so a FIFO cannot hang the call) and checked with ``fstat``
    on the open descriptor, so a file swapped between a check and the open is caught too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise SpecialFileError(f"{path} is a folder, not a regular file") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SpecialFileError(
                f"{path} is {_kind(mode)}, not a regular file: refusing to read it"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# -- paths ---------------------------------------------------------------------------------------
def resolve_within(root: str | Path, relative: str | Path) -> Path:
    """``root / relative`` with every symlink of its folders resolved; raise
    :class:`OutsideFolderError` unless it stays inside ``root`` (itself resolved).

    The last component is not followed: deleting or replacing a symlink inside ``root`` touches
    the link, never its target.
    """
    base = Path(root).resolve()
    relative = Path(relative)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise OutsideFolderError(f"{relative} is not a path inside {root}")
    candidate = (base / relative).parent.resolve() / relative.name
    if not candidate.is_relative_to(base):
        raise OutsideFolderError(
            f"{Path(root) / relative} leads outside {root} (to {candidate}) through a symlink"
        )
    return candidate


# -- disk ----------------------------------------------------------------------------------------
def free_disk_bytes(path: str | Path) -> int:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def check_free_disk(path: str | Path, nbytes: int, what: str) -> None:
    """Raise :class:`DiskSpaceError` unless ``nbytes`` (plus 1% margin) fit where ``path`` goes."""
    free = free_disk_bytes(path)
    if nbytes * 1.01 > free:
        raise DiskSpaceError(
            f"{what} needs about {human_bytes(nbytes)} at {path} but only {human_bytes(free)} "
            "is free on that disk: free space, choose another folder or make less"
        )


def is_disk_full(err: BaseException) -> bool:
    """Whether an error (or what caused it) says the disk or quota is full."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return True
        text = str(err)
        if "No space left on device" in text or "errno = 28" in text:
            return True
        err = err.__cause__ or err.__context__
        seen += 1
    return False


def describe_os_error(err: OSError, writing: str | Path | None = None) -> str:
    """One line for an I/O error: ``no space left on device writing X`` for a full disk, else
    what failed and where (``writing`` names the output when the error does not)."""
    where = err.filename or writing
    if isinstance(err, OSError) and err.errno == errno.EFBIG:
        return f"file size limit reached writing {where or 'the output'}"
    if is_disk_full(err):
        return f"no space left on device writing {where or 'the output'}"
    reason = err.strerror or str(err) or type(err).__name__
    return f"{reason}: {where}" if where else reason
