"""Write a file under a temporary name and publish it only when it is complete.

Dataset files and prediction tables are written block by block to ``<name>.partial`` and
renamed into place (``os.replace``, atomic on one file system) by a successful ``close``; an
error, or an interrupted run, leaves no file that looks whole under the final name. Small files
go through :func:`atomic_output`, report folders through :func:`atomic_folder`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Self


class AtomicWriter:
    """Base of writers that build ``<path>.partial`` and move it to ``path`` when done.

    Subclasses open their handles on :attr:`partial` and implement ``close`` (finish, then
    :meth:`_publish`) and ``abort`` (release handles, then :meth:`_discard`); used as a context
    manager, a clean exit closes and an exception aborts.
    """

    def __init__(self, path: str | Path, overwrite: bool) -> None:
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True (CLI: --overwrite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")

    def _publish(self) -> Path:
        os.replace(self.partial, self.path)
        return self.path

    def _discard(self) -> None:
        self.partial.unlink(missing_ok=True)

    def _abort_then_discard(self, release: Callable[[], None]) -> None:
        """Release handles (which may itself fail on a full disk), then always discard."""
        try:
            release()
        finally:
            self._discard()

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary handle on a temporary file beside ``path``, moved to ``path`` when the block
    ends cleanly and removed when it raises (a full disk, an interrupt): ``path`` is either
    absent, the old file or the complete new one, never a truncated file under its final name."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | Path, *, replace: Callable[[Path], bool]) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; it becomes ``path`` only when the block ends
    cleanly, and is deleted when it raises, so an interrupted writer never leaves a folder that
    looks whole (say ``metrics.json`` without ``report.html``).

    An existing ``path`` is swapped out and deleted only if ``replace(path)`` says it is safe
    (e.g. it holds an earlier report); otherwise FileExistsError. A leftover temporary folder
    from a killed run is removed first.
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and replace(path)):
        raise FileExistsError(
            f"{path} exists and is not an earlier output of this command: choose a new folder"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    old = path.with_name(f".{path.name}.old")
    for leftover in (partial, old):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
    partial.mkdir()
    try:
        yield partial
        if path.exists():
            os.replace(path, old)
        os.replace(partial, path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
