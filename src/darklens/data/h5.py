"""darklens dataset files: one self-describing HDF5 file per dataset, read lazily.

Layout (format ``darklens-dataset``, version 1)::

    /images         float32 [N, C, H, W], chunked along N
    /labels         int64   [N]
    /split          uint8   [N]    index into attrs["split_names"] (train, val, test)
    /truth/<name>   per-image truth columns, [N] or [N, K] (NaN-padded)
    /inputs/<name>  optional extra model inputs per image, float32 [N, ...] (e.g. light curves
                    [N, T, bands] or per-epoch images), chunked along N like the images
    attrs: format, format_version, class_names (JSON), split_names (JSON), manifest (JSON)

Files are written to ``<name>.partial`` and renamed into place only when complete, so an
interrupted run never leaves a file that looks whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darklens._atomic import AtomicWriter

FORMAT = "darklens-dataset"
FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")


class DatasetFormatError(ValueError):
    """A file is not a readable darklens dataset."""


class DatasetWriter(AtomicWriter):
    """Write a dataset of known size in blocks; atomically published on :meth:`close`.

    >>> # with DatasetWriter(path, n=10, image_shape=(1, 64, 64), class_names=[...]) as w:
    >>> #     w.write(0, images, labels, split, truth)
    """

    def __init__(
        self,
        path: str | Path,
        n: int,
        image_shape: Sequence[int],
        class_names: Sequence[str],
        manifest: Mapping[str, Any] | None = None,
        truth_columns: Mapping[str, tuple[tuple[int, ...], str]] | None = None,
        extra_inputs: Mapping[str, tuple[int, ...]] | None = None,
        chunk_images: int = 64,
        compression: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if n <= 0:
            raise ValueError(f"a dataset needs at least one image, got n={n}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        super().__init__(path, overwrite)
        self.n = n
        self.class_names = list(class_names)
        # No timestamps and a fixed library-version range: the same data gives the same file bytes.
        self._file = h5py.File(self.partial, "w", libver=("v110", "v110"))
        chunk = (min(chunk_images, n), *image_shape)
        self._file.create_dataset(
            "images",
            shape=(n, *image_shape),
            dtype="float32",
            chunks=chunk,
            compression=compression,
            track_times=False,
            dcpl=_early_allocation(compression),
        )
        self._file.create_dataset("labels", shape=(n,), dtype="int64", track_times=False)
        self._file.create_dataset("split", shape=(n,), dtype="uint8", track_times=False)
        truth = self._file.create_group("truth", track_order=False)
        for name, (shape, dtype) in (truth_columns or {}).items():
            fill = np.nan if np.dtype(dtype).kind == "f" else 0
            truth.create_dataset(
                name,
                shape=(n, *shape),
                dtype=dtype,
                fillvalue=fill,
                track_times=False,
                dcpl=_filled_up_front(),
            )
        inputs = self._file.create_group("inputs", track_order=False)
        for name, shape in (extra_inputs or {}).items():
            inputs.create_dataset(
                name,
                shape=(n, *shape),
                dtype="float32",
                chunks=(min(chunk_images, n), *shape),
                compression=compression,
                track_times=False,
                dcpl=_early_allocation(compression),
            )
        attrs = self._file.attrs
        attrs["format"] = FORMAT
        attrs["format_version"] = FORMAT_VERSION
        attrs["class_names"] = json.dumps(self.class_names)
        attrs["split_names"] = json.dumps(list(SPLIT_NAMES))
        attrs["manifest"] = json.dumps(dict(manifest or {}), default=_json_default)
        self._written = np.zeros(n, dtype=bool)

    def write(
        self,
        start: int,
        images: np.ndarray,
        labels: np.ndarray,
        split: np.ndarray,
        truth: Mapping[str, np.ndarray] | None = None,
        inputs: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Write images ``start .. start+len(images)`` with labels, split codes, truth and any
        declared extra inputs (each must be written for every image)."""
        stop = check_block(start, images, labels, self.n, len(self.class_names))
        self._file["images"][start:stop] = images.astype(np.float32, copy=False)
        self._file["labels"][start:stop] = labels
        self._file["split"][start:stop] = split
        for name, values in (truth or {}).items():
            if name not in self._file["truth"]:
                raise KeyError(f"truth column {name!r} was not declared")
            self._file["truth"][name][start:stop] = values
        declared = set(self._file["inputs"])
        if set(inputs or {}) != declared:
            raise KeyError(
                f"extra inputs given {sorted(inputs or {})} but declared {sorted(declared)}"
            )
        for name, values in (inputs or {}).items():
            if not np.all(np.isfinite(values)):
                raise ValueError(f"input {name!r} for {start}:{stop} contains NaN or inf")
            self._file["inputs"][name][start:stop] = np.asarray(values, dtype=np.float32)
        self._written[start:stop] = True

    def close(self) -> Path:
        """Finish the file and move it into place; raise if any image was never written."""
        missing = int((~self._written).sum())
        self._file.close()
        if missing:
            self._discard()
            raise RuntimeError(f"{missing} of {self.n} images were never written; nothing saved")
        return self._publish()

    def abort(self) -> None:
        if self._file.id.valid:
            self._file.close()
        self._discard()


def check_block(start: int, images: np.ndarray, labels: np.ndarray, n: int, n_classes: int) -> int:
    """Check a block of images ``start ..`` for a dataset of ``n`` images; return its stop."""
    stop = start + len(images)
    if start < 0 or stop > n:
        raise IndexError(f"block {start}:{stop} is outside the dataset of {n} images")
    if not np.all(np.isfinite(images)):
        raise ValueError(f"images {start}:{stop} contain NaN or infinite values")
    if np.any((labels < 0) | (labels >= n_classes)):
        raise ValueError(f"labels {start}:{stop} outside 0..{n_classes - 1}")
    return stop


def _early_allocation(compression: str | None) -> h5py.h5p.PropDCID | None:
    """Allocate all uncompressed chunks up front, in index order, without filling them.

    Chunk addresses then never depend on the order blocks were written in, so the same data
    gives the same file bytes whatever the batch size or worker count.
    """
    if compression is not None:
        return None
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def _filled_up_front() -> h5py.h5p.PropDCID:
    """Allocate a (contiguous) truth column at creation and write its fill value there.

    Its address then never depends on which column a block happened to write first, and values
    never written read as the fill value (NaN for floats, 0 for integers).
    """
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    return dcpl


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a manifest")


class LensDataset:
    """Lazy reader for a darklens dataset file.

    Nothing but labels and split codes is read up front; images are read on demand, so a file far
    larger than memory is fine. Safe to pass to worker processes: each process opens its own handle.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no dataset file at {self.path}")
        try:
            with h5py.File(self.path, "r") as f:
                attrs = dict(f.attrs)
                if attrs.get("format") != FORMAT:
                    raise DatasetFormatError(
                        f"{self.path} is an HDF5 file but not a darklens dataset "
                        "(import community layouts with `darklens import`)"
                    )
                version = int(attrs.get("format_version", -1))
                if version > FORMAT_VERSION:
                    raise DatasetFormatError(
                        f"{self.path} has format version {version}; this darklens reads up to "
                        f"{FORMAT_VERSION}: upgrade darklens"
                    )
                for key in ("images", "labels", "split"):
                    if key not in f:
                        raise DatasetFormatError(f"{self.path} lacks the /{key} dataset")
                self.class_names: list[str] = json.loads(attrs["class_names"])
                self.split_names: list[str] = json.loads(attrs["split_names"])
                self.manifest: dict[str, Any] = json.loads(attrs["manifest"])
                self.image_shape: tuple[int, ...] = tuple(f["images"].shape[1:])
                self.labels: np.ndarray = f["labels"][:]
                self.split_codes: np.ndarray = f["split"][:]
                self.truth_columns: list[str] = sorted(f["truth"].keys()) if "truth" in f else []
                self.input_names: list[str] = sorted(f["inputs"].keys()) if "inputs" in f else []
        except OSError as err:
            raise DatasetFormatError(
                f"cannot read {self.path}: {err} (corrupt or truncated?)"
            ) from err
        self._handle: h5py.File | None = None
        self._pid: int | None = None

    # -- lazy file handle, one per process -------------------------------------------------------
    def _file(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():
            self._handle = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"] = None
        state["_pid"] = None
        return state

    def __enter__(self) -> LensDataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self._file()["images"][index], int(self.labels[index])

    def images(self, indices: np.ndarray | slice | None = None) -> np.ndarray:
        """Read a block of images; sorted integer indices or a slice read fastest."""
        return _read_rows(self._file()["images"], indices)

    def iter_blocks(self, block: int = 1024) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, len(self), block):
            yield start, self.images(slice(start, min(start + block, len(self))))

    def split_indices(self, split: str) -> np.ndarray:
        if split == "all":
            return np.arange(len(self))
        if split not in self.split_names:
            raise KeyError(f"unknown split {split!r}; this file has {', '.join(self.split_names)}")
        return np.flatnonzero(self.split_codes == self.split_names.index(split))

    def inputs(self, name: str, indices: np.ndarray | slice | None = None) -> np.ndarray:
        """Read an extra input (e.g. light curves) for all images, a slice or any indices (in
        the order given, like :meth:`images`)."""
        if name not in self.input_names:
            available = ", ".join(self.input_names) or "none"
            raise KeyError(f"no extra input {name!r} in {self.path}; available: {available}")
        return _read_rows(self._file()["inputs"][name], indices)

    def input_shape(self, name: str) -> tuple[int, ...]:
        """Shape of one example of the extra input ``name``."""
        self.inputs(name, slice(0, 0))  # unknown names raise with the available ones
        return tuple(self._file()["inputs"][name].shape[1:])

    def truth(self, name: str) -> np.ndarray:
        if name not in self.truth_columns:
            raise KeyError(f"no truth column {name!r}; available: {', '.join(self.truth_columns)}")
        return self._file()["truth"][name][:]

    def counts(self) -> dict[str, dict[str, int]]:
        """Image counts per split and class: ``{split: {class: n}}``."""
        out: dict[str, dict[str, int]] = {}
        for code, split in enumerate(self.split_names):
            mask = self.split_codes == code
            out[split] = {
                name: int(np.sum(mask & (self.labels == k)))
                for k, name in enumerate(self.class_names)
            }
        return out


def _read_rows(data: h5py.Dataset, indices: np.ndarray | slice | None) -> np.ndarray:
    """Rows of ``data`` at ``indices`` in the order given (h5py itself wants increasing indices
    without repeats: read sorted, unique rows, then put them back in order)."""
    if indices is None:
        return data[:]
    if isinstance(indices, slice):
        return data[indices]
    indices = np.asarray(indices)
    order = np.argsort(indices, kind="stable")
    sorted_idx = indices[order]
    if sorted_idx.size and np.any(np.diff(sorted_idx) == 0):
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        block = data[unique][inverse]
    else:
        block = data[sorted_idx]
    out = np.empty_like(block)
    out[order] = block
    return out
