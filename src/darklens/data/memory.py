"""Datasets held in memory: what ``darklens.simulate(...)`` returns when given no output file.

:class:`InMemoryDataset` holds the same things as a dataset file (:mod:`darklens.data.h5`) as
numpy arrays: ``images`` [N, C, H, W] float32, ``labels``, ``split_codes``, ``truth`` and extra
``inputs`` by name, ``class_names`` and the ``manifest``. :meth:`InMemoryDataset.save` writes it
as a dataset file with the bytes a simulation straight to that file would have written.

:class:`ArrayWriter` is :class:`~darklens.data.h5.DatasetWriter`'s in-memory twin (same
arguments, same ``write`` checks), so the simulators fill either through one code path.
:func:`open_dataset` gives any dataset — a file path, a :class:`~darklens.data.h5.LensDataset`
or an :class:`InMemoryDataset` — the lazy reader interface of ``LensDataset``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from darklens.data.h5 import SPLIT_NAMES, DatasetWriter, LensDataset, check_block

TruthColumns = Mapping[str, tuple[tuple[int, ...], str]]


class InMemoryDataset:
    """A whole dataset as arrays (see the module docstring); cheap to index, easy to inspect.

    Examples:
        >>> import numpy as np
        >>> ds = InMemoryDataset(
        ...     images=np.zeros((4, 1, 8, 8), np.float32),
        ...     labels=np.array([0, 1, 0, 1]),
        ...     split_codes=np.array([0, 0, 1, 2], np.uint8),
        ...     class_names=["non_lens", "lens"],
        ... )
        >>> ds
        InMemoryDataset(4 images of 1x8x8; classes non_lens, lens; train 2, val 1, test 1)
        >>> ds.split("train").labels.tolist()
        [0, 1]
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        split_codes: np.ndarray,
        class_names: Sequence[str],
        manifest: Mapping[str, Any] | None = None,
        truth: Mapping[str, np.ndarray] | None = None,
        inputs: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.float32:
            raise ValueError(
                f"images must be float32 [N, C, H, W], got {images.dtype} {images.shape}"
            )
        n = len(images)
        check_block(0, images, np.asarray(labels), n, len(class_names))
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.split_codes = np.asarray(split_codes, dtype=np.uint8)
        if self.labels.shape != (n,) or self.split_codes.shape != (n,):
            raise ValueError(f"labels and split_codes must have shape ({n},)")
        if np.any(self.split_codes >= len(SPLIT_NAMES)):
            raise ValueError(f"split codes must be 0..{len(SPLIT_NAMES) - 1} ({SPLIT_NAMES})")
        self.class_names = list(class_names)
        self.split_names = list(SPLIT_NAMES)
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.truth = _per_image("truth column", truth, n)
        self.inputs = _per_image("extra input", inputs, n)

    # -- what LensDataset also answers ---------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def truth_columns(self) -> list[str]:
        return sorted(self.truth)

    @property
    def input_names(self) -> list[str]:
        return sorted(self.inputs)

    def __len__(self) -> int:
        return len(self.labels)

    def split_indices(self, split: str) -> np.ndarray:
        """Positions of the images in ``split`` (``all`` for every image)."""
        if split == "all":
            return np.arange(len(self))
        if split not in self.split_names:
            raise KeyError(f"unknown split {split!r}; choose all, {', '.join(self.split_names)}")
        return np.flatnonzero(self.split_codes == self.split_names.index(split))

    def counts(self) -> dict[str, dict[str, int]]:
        """Image counts per split and class: ``{split: {class: n}}``."""
        return {
            split: {
                name: int(np.sum((self.split_codes == code) & (self.labels == k)))
                for k, name in enumerate(self.class_names)
            }
            for code, split in enumerate(self.split_names)
        }

    # -- selection and saving --------------------------------------------------------------------
    def subset(self, indices: np.ndarray | Sequence[int]) -> InMemoryDataset:
        """The images at ``indices`` (in that order) with their labels, splits, truth and inputs."""
        rows = np.asarray(indices, dtype=np.int64)
        return InMemoryDataset(
            self.images[rows],
            self.labels[rows],
            self.split_codes[rows],
            self.class_names,
            self.manifest,
            {name: values[rows] for name, values in self.truth.items()},
            {name: values[rows] for name, values in self.inputs.items()},
        )

    def split(self, split: str) -> InMemoryDataset:
        """The images of one split (``train``, ``val``, ``test``)."""
        return self.subset(self.split_indices(split))

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write a darklens dataset file (atomically); a simulation gives the same file bytes as
        ``darklens.simulate(..., out=path)`` with the same settings and seed."""
        columns = {name: (v.shape[1:], v.dtype.str) for name, v in self.truth.items()}
        with DatasetWriter(
            path,
            len(self),
            self.image_shape,
            self.class_names,
            manifest=self.manifest,
            truth_columns=columns,
            extra_inputs={name: v.shape[1:] for name, v in self.inputs.items()} or None,
            overwrite=overwrite,
        ) as writer:
            writer.write(
                0, self.images, self.labels, self.split_codes, self.truth, self.inputs or None
            )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> InMemoryDataset:
        """Read a whole dataset file into memory."""
        with LensDataset(path) as ds:
            return cls(
                ds.images(),
                ds.labels,
                ds.split_codes,
                ds.class_names,
                ds.manifest,
                {name: ds.truth(name) for name in file_order(ds.path, "truth")},
                {name: ds.inputs(name) for name in file_order(ds.path, "inputs")},
            )

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        splits = ", ".join(
            f"{name} {int(np.sum(self.split_codes == code))}"
            for code, name in enumerate(self.split_names)
        )
        return (
            f"InMemoryDataset({len(self)} images of {shape}; classes "
            f"{', '.join(self.class_names)}; {splits})"
        )


def _per_image(what: str, columns: Mapping[str, np.ndarray] | None, n: int) -> dict:
    out = {}
    for name, values in (columns or {}).items():
        values = np.asarray(values)
        if values.ndim == 0 or len(values) != n:
            raise ValueError(f"{what} {name!r} has shape {values.shape}; expected ({n}, ...)")
        out[str(name)] = values
    return out


def file_order(path: str | Path, group: str) -> list[str]:
    """The names in a dataset file's group (``truth``, ``inputs``) in the order they were
    created (their header addresses), so that copies of the file can write the same bytes."""
    import h5py

    with h5py.File(path, "r") as f:
        if group not in f:
            return []
        members = f[group]
        return sorted(members, key=lambda name: h5py.h5o.get_info(members[name].id).addr)


class ArrayWriter:
    """Collect a dataset in memory block by block, with :class:`DatasetWriter`'s arguments and
    checks; :meth:`close` returns the :class:`InMemoryDataset`. Unwritten truth entries are NaN
    (0 for integers), as in a dataset file."""

    def __init__(
        self,
        n: int,
        image_shape: Sequence[int],
        class_names: Sequence[str],
        manifest: Mapping[str, Any] | None = None,
        truth_columns: TruthColumns | None = None,
        extra_inputs: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        if n <= 0:
            raise ValueError(f"a dataset needs at least one image, got n={n}")
        self.n = n
        self.class_names = list(class_names)
        self.manifest = dict(manifest or {})
        self.images = np.zeros((n, *image_shape), dtype=np.float32)
        self.labels = np.zeros(n, dtype=np.int64)
        self.split_codes = np.zeros(n, dtype=np.uint8)
        self.truth = {
            name: np.full((n, *shape), np.nan if np.dtype(dtype).kind == "f" else 0, dtype=dtype)
            for name, (shape, dtype) in (truth_columns or {}).items()
        }
        self.inputs = {
            name: np.zeros((n, *shape), dtype=np.float32)
            for name, shape in (extra_inputs or {}).items()
        }
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
        """Store images ``start .. start+len(images)`` (checked as a dataset file's writer does)."""
        stop = check_block(start, images, labels, self.n, len(self.class_names))
        if set(inputs or {}) != set(self.inputs):
            raise KeyError(f"extra inputs given {sorted(inputs or {})}, declared {self.inputs}")
        for name, values in (inputs or {}).items():
            if not np.all(np.isfinite(values)):
                raise ValueError(f"input {name!r} for {start}:{stop} contains NaN or inf")
            self.inputs[name][start:stop] = values
        for name, values in (truth or {}).items():
            if name not in self.truth:
                raise KeyError(f"truth column {name!r} was not declared")
            self.truth[name][start:stop] = values
        self.images[start:stop] = images
        self.labels[start:stop] = labels
        self.split_codes[start:stop] = split
        self._written[start:stop] = True

    def close(self) -> InMemoryDataset:
        missing = int((~self._written).sum())
        if missing:
            raise RuntimeError(f"{missing} of {self.n} images were never written")
        return InMemoryDataset(
            self.images,
            self.labels,
            self.split_codes,
            self.class_names,
            self.manifest,
            self.truth,
            self.inputs,
        )


class DatasetReader(Protocol):
    """What readers of a dataset use: :class:`~darklens.data.h5.LensDataset`'s interface."""

    class_names: list[str]
    split_names: list[str]
    manifest: dict[str, Any]
    labels: np.ndarray
    split_codes: np.ndarray

    @property
    def image_shape(self) -> tuple[int, ...]: ...
    @property
    def truth_columns(self) -> list[str]: ...
    @property
    def input_names(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def images(self, indices: np.ndarray | slice | None = None) -> np.ndarray: ...
    def inputs(self, name: str, indices: np.ndarray | slice | None = None) -> np.ndarray: ...
    def input_shape(self, name: str) -> tuple[int, ...]: ...
    def truth(self, name: str) -> np.ndarray: ...
    def split_indices(self, split: str) -> np.ndarray: ...
    def counts(self) -> dict[str, dict[str, int]]: ...


class MemoryReader:
    """An :class:`InMemoryDataset` behind the reader interface of ``LensDataset``."""

    def __init__(self, data: InMemoryDataset) -> None:
        self.data = data
        self.path = Path("<memory>")
        self.class_names = data.class_names
        self.split_names = data.split_names
        self.manifest = data.manifest
        self.labels = data.labels
        self.split_codes = data.split_codes
        self.image_shape = data.image_shape
        self.truth_columns = data.truth_columns
        self.input_names = data.input_names

    def __len__(self) -> int:
        return len(self.data)

    def images(self, indices: np.ndarray | slice | None = None) -> np.ndarray:
        return self.data.images if indices is None else self.data.images[indices]

    def inputs(self, name: str, indices: np.ndarray | slice | None = None) -> np.ndarray:
        if name not in self.data.inputs:
            available = ", ".join(self.input_names) or "none"
            raise KeyError(f"no extra input {name!r} in this dataset; available: {available}")
        values = self.data.inputs[name]
        return values if indices is None else values[indices]

    def input_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.inputs(name).shape[1:])

    def truth(self, name: str) -> np.ndarray:
        if name not in self.data.truth:
            raise KeyError(f"no truth column {name!r}; available: {', '.join(self.truth_columns)}")
        return self.data.truth[name]

    def split_indices(self, split: str) -> np.ndarray:
        return self.data.split_indices(split)

    def counts(self) -> dict[str, dict[str, int]]:
        return self.data.counts()


def open_dataset(source: str | Path | LensDataset | InMemoryDataset) -> DatasetReader:
    """A reader for a dataset file path, an open ``LensDataset`` or an ``InMemoryDataset``."""
    if isinstance(source, InMemoryDataset):
        return MemoryReader(source)
    if isinstance(source, LensDataset):
        return source
    if isinstance(source, (str, Path)):
        return LensDataset(source)
    raise TypeError(
        f"expected a dataset file path, a LensDataset or an InMemoryDataset, got "
        f"{type(source).__name__}"
    )
