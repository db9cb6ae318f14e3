"""darklens dataset files: one self-describing HDF5 file per dataset, read lazily.

Layout (format ``darklens-dataset``, version 1)::

    /images         float32 [N, C, H, W], chunked along N
    /labels         int64   [N]
    /split          uint8   [N]    index into attrs["split_names"] (train, val, test)
    /truth/<name>   per-image truth columns, [N] or [N, K] (NaN-padded)
    /inputs/<name>  optional extra model inputs per image, float32 [N, ...] (e.g. light curves
                    [N, T, bands] or per-epoch images), chunked along N like the images
    /targets/clean  optional noiseless images float32 [N, C, H, W] (``store_clean``: denoising)
    attrs: format, format_version, class_names (JSON), split_names (JSON), manifest (JSON)

Files are written to ``<name>.partial`` and renamed into place only when complete, so an
interrupted run never leaves a file that looks whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darklens._atomic import AtomicWriter
from darklens.data.shards import check_virtual_sources
from darklens.guards import check_allocation, require_regular_file

FORMAT = "darklens-dataset"
FORMAT_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
CLEAN = "clean"  # /targets/clean: the noiseless images


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
        store_clean: bool = False,
    ) -> None:
        """``store_clean`` adds ``/targets/clean``: each image without its noise (denoising),
        then given to every :meth:`write` as ``clean``."""
        if n <= 0:
            raise ValueError(f"a dataset needs at least one image, got n={n}")
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
        super().__init__(path, overwrite)
        self.n = n
        self.class_names = list(class_names)
        self._truth_order = list(truth_columns or {})
        self.store_clean = store_clean
        # No timestamps and a fixed library-version range: the same data gives the same file bytes.
        try:
            # No chunk cache: image data reaches the disk inside write(), so a full disk raises
            # there instead of in h5py's destructors (which only print, then crash at exit).
            self._file = h5py.File(self.partial, "w", libver=("v110", "v110"), rdcc_nbytes=0)
        except BlockingIOError:
            raise FileExistsError(
                f"{self.path} is being written by another process ({self.partial.name} is "
                "locked): wait for it to finish or choose another output"
            ) from None
        try:
            self._layout(
                image_shape, manifest, truth_columns, extra_inputs, chunk_images, compression
            )
        except BaseException:  # e.g. no space for the early-allocated images: leave nothing
            self.abort()
            raise
        self._written = np.zeros(n, dtype=bool)

    def _layout(
        self,
        image_shape: Sequence[int],
        manifest: Mapping[str, Any] | None,
        truth_columns: Mapping[str, tuple[tuple[int, ...], str]] | None,
        extra_inputs: Mapping[str, tuple[int, ...]] | None,
        chunk_images: int,
        compression: str | None,
    ) -> None:
        n = self.n
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
                name, shape=(n, *shape), dtype=dtype, fillvalue=fill, track_times=False
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
        if self.store_clean:
            self._file.create_group("targets", track_order=False).create_dataset(
                CLEAN,
                shape=(n, *image_shape),
                dtype="float32",
                chunks=chunk,
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

    def write(
        self,
        start: int,
        images: np.ndarray,
        labels: np.ndarray,
        split: np.ndarray,
        truth: Mapping[str, np.ndarray] | None = None,
        inputs: Mapping[str, np.ndarray] | None = None,
        clean: np.ndarray | None = None,
    ) -> None:
        """Write images ``start .. start+len(images)`` with labels, split codes, truth and any
        declared extra inputs (each must be written for every image), and with ``store_clean``
        the noiseless images."""
        try:
            self._write(start, images, labels, split, truth, inputs)
            self._write_clean(start, images, clean)
        except OSError:  # the disk is full or the file too large: nothing more will be kept
            self._detach_disk()
            raise

    def _write(
        self,
        start: int,
        images: np.ndarray,
        labels: np.ndarray,
        split: np.ndarray,
        truth: Mapping[str, np.ndarray] | None,
        inputs: Mapping[str, np.ndarray] | None,
    ) -> None:
        stop = check_block(start, images, labels, self.n, len(self.class_names))
        self._file["images"][start:stop] = images.astype(np.float32, copy=False)
        self._file["labels"][start:stop] = labels
        self._file["split"][start:stop] = split
        unknown = set(truth or {}) - set(self._truth_order)
        if unknown:
            raise KeyError(f"truth column(s) {sorted(unknown)} were not declared")
        # in declaration order: a column's space is allocated when first written, so the file
        # bytes never depend on the order of the block's dict
        for name in (name for name in self._truth_order if name in (truth or {})):
            self._file["truth"][name][start:stop] = truth[name]
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

    def _write_clean(self, start: int, images: np.ndarray, clean: np.ndarray | None) -> None:
        if not self.store_clean:
            if clean is not None:
                raise KeyError("noiseless images given but the writer was made without store_clean")
            return
        if clean is None or np.shape(clean) != np.shape(images):
            raise ValueError(
                f"store_clean needs the noiseless images shaped like the images "
                f"{np.shape(images)}, got {None if clean is None else np.shape(clean)}"
            )
        if not np.all(np.isfinite(clean)):
            raise ValueError(f"noiseless images {start}:{start + len(images)} contain NaN or inf")
        self._file["targets"][CLEAN][start : start + len(images)] = clean.astype(np.float32)

    def close(self) -> Path:
        """Finish the file and move it into place; raise if any image was never written."""
        missing = int((~self._written).sum())
        try:
            self._file.close()
        except BaseException:  # a full disk can fail the final flush: leave no .partial
            self._discard()
            raise
        if missing:
            self._discard()
            raise RuntimeError(f"{missing} of {self.n} images were never written; nothing saved")
        return self._publish()

    def abort(self) -> None:
        self._abort_then_discard(self._close_after_failure)

    def _close_after_failure(self) -> None:
        """Close the half-written file without letting HDF5 retry failed writes.

        After a write error (full disk, file size limit) HDF5 still flushes its caches on close,
        fails again, and h5py retries in every destructor: hundreds of error lines and a crash at
        exit. Pointing the file's descriptor at /dev/null first lets the flush succeed harmlessly;
        the ``.partial`` file is deleted right after.
        """
        if not self._file.id.valid:
            return
        self._detach_disk()
        try:
            self._file.close()
        except (OSError, RuntimeError, ValueError):
            pass

    def _detach_disk(self) -> None:
        """Send the file's further writes to /dev/null (see :meth:`_close_after_failure`)."""
        try:
            fd = self._file.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except (OSError, ValueError, RuntimeError):
            pass


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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a manifest")


def _json_attr(attrs: Any, key: str, kind: type) -> Any:
    try:
        value = json.loads(attrs[key])
    except KeyError:
        raise ValueError(f"lacks the {key!r} attribute") from None
    except (TypeError, ValueError):
        raise ValueError(f"its {key!r} attribute is not valid JSON") from None
    if not isinstance(value, kind):
        raise ValueError(f"its {key!r} attribute is not a JSON {kind.__name__}")
    return value


def _name_list(attrs: Any, key: str) -> list[str]:
    names = _json_attr(attrs, key, list)
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise ValueError(f"its {key} {names} are not distinct names")
    return names


def _header_problems(f: h5py.File) -> list[str]:
    """Format, version, attributes and the shapes of /images, /labels, /split."""
    attrs = f.attrs
    if attrs.get("format") != FORMAT:
        return [
            "an HDF5 file but not a darklens dataset (import community layouts with "
            "`darklens import`)"
        ]
    try:
        version = int(attrs.get("format_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version > FORMAT_VERSION or version < 1:
        return [
            f"format version {attrs.get('format_version')!r}; this darklens reads 1 to "
            f"{FORMAT_VERSION} (upgrade darklens for newer files)"
        ]
    problems = []
    for key, kind in (("class_names", list), ("split_names", list), ("manifest", dict)):
        try:
            _name_list(attrs, key) if kind is list else _json_attr(attrs, key, kind)
        except ValueError as err:
            problems.append(str(err))
    for key, ndim in (("images", 4), ("labels", 1), ("split", 1)):
        item = f.get(key, getlink=True)
        if item is None:
            problems.append(f"lacks the /{key} dataset")
        elif not isinstance(f.get(key), h5py.Dataset):
            problems.append(f"/{key} is not a dataset")
        elif f[key].ndim != ndim or f[key].dtype.kind not in "iuf":
            problems.append(
                f"/{key} is {f[key].dtype} of shape {f[key].shape}; expected {ndim}-D numbers"
            )
    return problems


def _count_problems(f: h5py.File, source: Path) -> list[str]:
    """Equal lengths, integer labels in range, known split codes (values read after a size
    check), and /truth, /inputs groups of per-image columns."""
    n = f["images"].shape[0]
    problems = [
        f"{f[key].shape[0]:,} {what} but {n:,} images: every image needs exactly one"
        for key, what in (("labels", "labels"), ("split", "split codes"))
        if f[key].shape[0] != n
    ]
    if problems:
        return problems
    check_allocation(n * 16, f"the labels and split codes of {n:,} images", source)
    class_names = _name_list(f.attrs, "class_names")
    split_names = _name_list(f.attrs, "split_names")
    if f["labels"].dtype.kind not in "iu":
        problems.append(f"/labels are {f['labels'].dtype}; class labels must be integers")
    labels, codes = f["labels"][:], f["split"][:]
    bad = labels[(labels < 0) | (labels >= len(class_names))]
    if bad.size:
        problems.append(
            f"{bad.size:,} labels outside 0..{len(class_names) - 1} ({len(class_names)} classes "
            f"{', '.join(class_names)}), e.g. {bad[0]}"
        )
    bad = codes[(codes < 0) | (codes >= len(split_names)) | (codes != np.round(codes))]
    if bad.size:
        problems.append(
            f"{bad.size:,} split codes outside 0..{len(split_names) - 1} "
            f"({', '.join(split_names)}), e.g. {bad[0]}"
        )
    if "targets" in f and isinstance(f["targets"], h5py.Group) and CLEAN in f["targets"]:
        clean = f["targets"][CLEAN]
        if not isinstance(clean, h5py.Dataset) or clean.shape != f["images"].shape:
            shape = getattr(clean, "shape", "a group")
            problems.append(f"/targets/{CLEAN} has shape {shape}; expected {f['images'].shape}")
    for group in ("truth", "inputs", "targets"):
        if group not in f:
            continue
        if not isinstance(f[group], h5py.Group):
            problems.append(f"/{group} is a dataset; expected a group of per-image columns")
            continue
        for name, column in f[group].items():
            if not isinstance(column, h5py.Dataset) or column.ndim < 1 or column.shape[0] != n:
                shape = getattr(column, "shape", "a group")
                problems.append(f"/{group}/{name} has shape {shape}; expected [{n}, ...]")
    return problems


def dataset_problems(f: h5py.File, source: Path, first_only: bool = False) -> list[str]:
    """Everything wrong with the layout of an open dataset file (empty when it is valid)."""
    problems = _header_problems(f)
    if problems:  # the counts cannot be checked without a sound header
        return problems[:1] if first_only else problems
    problems = _count_problems(f, source)
    return problems[:1] if first_only else problems


@dataclass(frozen=True)
class DatasetCheck:
    """What :func:`check_dataset_file` found: ``problems`` make the file unusable (opening it
    raises), ``warnings`` are legal but probably unintended (a split without a class)."""

    path: Path
    problems: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def empty_class_warnings(
    labels: np.ndarray,
    split_codes: np.ndarray,
    class_names: Sequence[str],
    split_names: Sequence[str],
) -> list[str]:
    """One line per non-empty split that holds no example of some class."""
    lines = []
    for code, split in enumerate(split_names):
        in_split = labels[split_codes == code]
        if in_split.size == 0:
            continue
        missing = [name for k, name in enumerate(class_names) if not np.any(in_split == k)]
        if missing:
            lines.append(
                f"split {split!r} ({in_split.size:,} images) has no example of class "
                f"{', '.join(missing)}: its metrics (AUC) cannot be computed for that class"
            )
    return lines


def check_dataset_file(path: str | Path, block: int = 1024) -> DatasetCheck:
    """Every problem of a dataset file: layout, counts, labels, split codes, truth and input
    columns, non-finite pixels or inputs (read in blocks); plus warnings such as a split
    without an example of a class."""
    path = Path(path)
    try:
        require_regular_file(path)
        with h5py.File(path, "r") as f:
            problems = dataset_problems(f, path)
            if problems:
                return DatasetCheck(path, tuple(problems), ())
            problems += _non_finite_problems(f, block)
            labels, codes = f["labels"][:], f["split"][:]
            classes, splits = _name_list(f.attrs, "class_names"), _name_list(f.attrs, "split_names")
            warnings = empty_class_warnings(labels, codes, classes, splits)
    except (OSError, ValueError) as err:
        return DatasetCheck(path, (f"cannot read it: {err}",), ())
    return DatasetCheck(path, tuple(problems), tuple(warnings))


def _non_finite_problems(f: h5py.File, block: int) -> list[str]:
    problems = []
    columns = [("images", f["images"])]
    columns += [(f"inputs/{name}", d) for name, d in f["inputs"].items()] if "inputs" in f else []
    for name, data in columns:
        if data.dtype.kind != "f":
            continue
        bad, first = 0, None
        for start in range(0, data.shape[0], block):
            rows = data[start : start + block]
            finite = np.isfinite(rows.reshape(len(rows), -1)).all(axis=1)
            bad += int((~finite).sum())
            if first is None and not finite.all():
                first = start + int(np.flatnonzero(~finite)[0])
        if bad:
            problems.append(
                f"{bad:,} rows of /{name} hold NaN or infinite values (first: index {first})"
            )
    return problems


class LensDataset:
    """Lazy reader for a darklens dataset file.

    Nothing but labels and split codes is read up front; images are read on demand, so a file far
    larger than memory is fine. Safe to pass to worker processes: each process opens its own handle.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no dataset file at {self.path}")
        require_regular_file(self.path)
        try:
            with h5py.File(self.path, "r") as f:
                missing_shard = check_virtual_sources(self.path, f)
                if missing_shard:
                    raise DatasetFormatError(missing_shard)
                problems = dataset_problems(f, self.path, first_only=True)
                if problems:
                    raise DatasetFormatError(f"{self.path}: {problems[0]}")
                attrs = f.attrs
                self.class_names: list[str] = json.loads(attrs["class_names"])
                self.split_names: list[str] = json.loads(attrs["split_names"])
                self.manifest: dict[str, Any] = json.loads(attrs["manifest"])
                self.image_shape: tuple[int, ...] = tuple(f["images"].shape[1:])
                self.labels: np.ndarray = f["labels"][:].astype(np.int64, copy=False)
                self.split_codes: np.ndarray = f["split"][:]
                self.truth_columns: list[str] = sorted(f["truth"].keys()) if "truth" in f else []
                self.input_names: list[str] = sorted(f["inputs"].keys()) if "inputs" in f else []
                self.target_names: list[str] = sorted(f["targets"].keys()) if "targets" in f else []
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

    def clean_images(self, indices: np.ndarray | slice | None = None) -> np.ndarray:
        """The noiseless images stored beside the noisy ones (``/targets/clean``), float32."""
        if CLEAN not in self.target_names:
            raise KeyError(
                f"{self.path} holds no noiseless images (/targets/{CLEAN}); simulate with "
                "--set store_clean=true"
            )
        return _read_rows(self._file()["targets"][CLEAN], indices).astype(np.float32, copy=False)

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
