"""A dataset made of shard files: an HDF5 index file of virtual datasets over them.

``darklens simulate --shards N`` writes each index range to its own complete dataset file
(``<out>.shards/shard-00003-of-00008.h5``), then ``<out>`` itself: a file of the same layout whose
every dataset (images, labels, split, truth, inputs) is an HDF5 virtual dataset mapping the
shards' rows in order, with paths relative to the index file. :class:`~darklens.data.h5.
LensDataset` reads it as one dataset. The index is written last and atomically, so it exists only
when every shard does; a shard removed later is reported by :func:`check_virtual_sources`
(HDF5 itself would read its rows as fill values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darklens._atomic import AtomicWriter

SHARD_DIR_SUFFIX = ".shards"


def shard_dir(out: str | Path) -> Path:
    """Folder of the shard files of the index file ``out``."""
    out = Path(out)
    return out.with_name(out.name + SHARD_DIR_SUFFIX)


def shard_path(out: str | Path, index: int, count: int) -> Path:
    return shard_dir(out) / f"shard-{index:05d}-of-{count:05d}.h5"


def _datasets(group: h5py.Group, prefix: str = "") -> list[str]:
    """Paths of every dataset under ``group`` (sorted, depth first)."""
    names = []
    for name in sorted(group):
        item = group[name]
        if isinstance(item, h5py.Group):
            names += _datasets(item, f"{prefix}{name}/")
        else:
            names.append(f"{prefix}{name}")
    return names


class ShardIndexWriter(AtomicWriter):
    """Write the index file over complete shard files (``ranges`` = their (start, stop))."""

    def __init__(
        self,
        path: str | Path,
        shards: Sequence[Path],
        ranges: Sequence[tuple[int, int]],
        manifest: Mapping[str, Any],
        overwrite: bool = False,
    ) -> None:
        super().__init__(path, overwrite)
        self.shards, self.ranges, self.manifest = list(shards), list(ranges), dict(manifest)

    def close(self) -> Path:
        n = self.ranges[-1][1]
        with h5py.File(self.shards[0], "r") as first:
            names = _datasets(first)
            specs = {name: (first[name].shape[1:], first[name].dtype) for name in names}
            attrs = dict(first.attrs)
            groups = [name for name in ("truth", "inputs") if name in first]
        relative = [str(p.relative_to(self.path.parent)) for p in self.shards]
        with h5py.File(self.partial, "w", libver=("v110", "v110")) as index:
            for group in groups:
                index.create_group(group, track_order=False)
            for name, (shape, dtype) in specs.items():
                layout = h5py.VirtualLayout((n, *shape), dtype)
                for source, (start, stop) in zip(relative, self.ranges, strict=True):
                    layout[start:stop] = h5py.VirtualSource(source, name, (stop - start, *shape))
                fill = np.nan if np.dtype(dtype).kind == "f" else 0
                index.create_virtual_dataset(name, layout, fillvalue=fill)
            for key, value in attrs.items():
                index.attrs[key] = value
            shards = {"files": relative, "ranges": [list(r) for r in self.ranges]}
            index.attrs["manifest"] = json.dumps({**self.manifest, "shards": shards})
        return self._publish()

    def abort(self) -> None:
        self._discard()


def check_virtual_sources(path: Path, handle: h5py.File) -> str | None:
    """A message naming the first missing source file of ``path``'s virtual images, or None."""
    images = handle.get("images")
    if not isinstance(images, h5py.Dataset) or not images.is_virtual:
        return None
    for source in {mapping.file_name for mapping in images.virtual_sources()}:
        if not (path.parent / source).is_file():
            return (
                f"{path} is a shard set whose shard {source} is missing (rerun the sharded "
                "`darklens simulate` with the same settings to make it again)"
            )
    return None
