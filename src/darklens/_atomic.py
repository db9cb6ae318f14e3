"""Write a file under a temporary name and publish it only when it is complete.

Dataset files and prediction tables are written block by block to ``<name>.partial`` and
renamed into place (``os.replace``, atomic on one file system) by a successful ``close``; an
error, or an interrupted run, leaves no file that looks whole under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self


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
