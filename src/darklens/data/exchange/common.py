"""What the exchange layouts share: the schema every export records, the export folder, row
selection and writing rows back into a dataset file in index order."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens.data.h5 import SPLIT_NAMES, DatasetWriter, LensDataset
from darklens.data.memory import DatasetReader, InMemoryDataset, MemoryReader, file_order

FORMAT = "darklens-exchange"
FORMAT_VERSION = 1
MARKER = "darklens.json"  # in every exported folder: the schema and the files written
CARD = "README.md"

Source = str | Path | LensDataset | InMemoryDataset


class ExchangeError(ValueError):
    """An exchange folder or file is not a readable darklens export; the message says why."""


@dataclass(frozen=True)
class Schema:
    """Everything besides the per-image rows that an export must carry to be imported back:
    classes, image shape, manifest, and the truth and extra-input columns (in file order)."""

    layout: str
    image_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    manifest: dict[str, Any]
    truth_columns: tuple[tuple[str, tuple[int, ...], str], ...]
    extra_inputs: tuple[tuple[str, tuple[int, ...]], ...]
    n_images: int

    @classmethod
    def of(cls, reader: DatasetReader, layout: str, n_images: int) -> Schema:
        truth = _order(reader, "truth", reader.truth_columns)
        inputs = _order(reader, "inputs", reader.input_names)
        return cls(
            layout=layout,
            image_shape=tuple(reader.image_shape),
            class_names=tuple(reader.class_names),
            manifest=dict(reader.manifest),
            truth_columns=tuple(
                (name, tuple(reader.truth(name).shape[1:]), reader.truth(name).dtype.name)
                for name in truth
            ),
            extra_inputs=tuple((name, tuple(reader.input_shape(name))) for name in inputs),
            n_images=n_images,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "layout": self.layout,
            "darklens_version": __version__,
            "n_images": self.n_images,
            "image_shape": list(self.image_shape),
            "class_names": list(self.class_names),
            "split_names": list(SPLIT_NAMES),
            "manifest": self.manifest,
            "truth_columns": [[n, list(s), d] for n, s, d in self.truth_columns],
            "extra_inputs": [[n, list(s)] for n, s in self.extra_inputs],
        }

    @classmethod
    def from_json(cls, data: Any, source: str | Path) -> Schema:
        """Read a recorded schema; :class:`ExchangeError` naming ``source`` when it is not one."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ExchangeError(f"{source} holds no darklens export schema (format {FORMAT!r})")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ExchangeError(
                f"{source} has export format version {version!r}; this darklens reads up to "
                f"{FORMAT_VERSION}: upgrade darklens"
            )
        try:
            schema = cls(
                layout=str(data["layout"]),
                image_shape=tuple(int(v) for v in data["image_shape"]),
                class_names=tuple(str(v) for v in data["class_names"]),
                manifest=dict(data["manifest"]),
                truth_columns=tuple(
                    (str(n), tuple(int(v) for v in s), np.dtype(d).name)
                    for n, s, d in data["truth_columns"]
                ),
                extra_inputs=tuple(
                    (str(n), tuple(int(v) for v in s)) for n, s in data["extra_inputs"]
                ),
                n_images=int(data["n_images"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ExchangeError(f"{source}: malformed darklens export schema ({err})") from None
        if len(schema.image_shape) != 3 or min(schema.image_shape) < 1 or not schema.class_names:
            raise ExchangeError(f"{source}: malformed darklens export schema (image shape)")
        return schema

    def same_dataset(self, other: Schema) -> bool:
        """True when two shards' schemas describe the same export."""
        return self.to_json() | {"darklens_version": ""} == other.to_json() | {
            "darklens_version": ""
        }


def _order(reader: DatasetReader, group: str, names: Sequence[str]) -> list[str]:
    """Column names in the order the dataset file created them (so that an import writes the
    same file bytes); an in-memory dataset keeps its own order."""
    if isinstance(reader, MemoryReader):
        return list(reader.data.truth if group == "truth" else reader.data.inputs)
    if isinstance(reader, LensDataset):
        return file_order(reader.path, group)
    return list(names)


def export_rows(reader: DatasetReader, split: str) -> np.ndarray:
    """The dataset positions an export of ``split`` (``all`` or one split) holds, in order."""
    if split != "all" and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; choose all, {', '.join(SPLIT_NAMES)}")
    rows = reader.split_indices(split)
    if rows.size == 0:
        raise ValueError(f"the dataset has no images in split {split!r}")
    return rows


def split_blocks(
    reader: DatasetReader, rows: np.ndarray, rows_per_block: int
) -> Iterator[tuple[str, int, int, np.ndarray]]:
    """``(split name, block number, blocks in that split, positions)`` for the rows, split by
    split, in blocks of at most ``rows_per_block``."""
    for code, name in enumerate(SPLIT_NAMES):
        members = rows[reader.split_codes[rows] == code]
        blocks = [members[i : i + rows_per_block] for i in range(0, members.size, rows_per_block)]
        for number, block in enumerate(blocks):
            yield name, number, len(blocks), block


# -- the export folder ---------------------------------------------------------------------------
def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Create ``out_dir``; a non-empty one only with ``overwrite`` and only if an earlier darklens
    export wrote it (then the files its marker lists are removed, nothing else)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; choose a folder for the export")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    marker = out_dir / MARKER
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty; pass overwrite=True (CLI: --overwrite) to replace an "
            "earlier export"
        )
    if not marker.is_file():
        raise FileExistsError(
            f"refusing to overwrite {out_dir}: it has no {MARKER}, so darklens export did not "
            "write it; choose an empty or new folder"
        )
    try:
        listed = [Path(p) for p in json.loads(marker.read_text())["files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{marker} is unreadable ({err}); empty {out_dir} by hand") from None
    if any(p.is_absolute() or ".." in p.parts for p in listed):
        raise ValueError(f"{marker} lists files outside {out_dir}; empty it by hand")
    for relative in [*listed, Path(CARD)]:
        (out_dir / relative).unlink(missing_ok=True)
    for folder in sorted({p.parent for p in listed}, key=lambda p: -len(p.parts)):
        if folder.parts and (out_dir / folder).is_dir() and not any((out_dir / folder).iterdir()):
            (out_dir / folder).rmdir()
    marker.unlink()


def write_marker(out_dir: Path, schema: Schema, files: Sequence[str]) -> None:
    """Record the schema and the files the export writes (first, so that even an interrupted
    export can be replaced with ``overwrite=True``)."""
    record = {**schema.to_json(), "files": list(files)}
    (out_dir / MARKER).write_text(json.dumps(record, indent=1, default=_plain))


def read_marker(folder: Path) -> tuple[Schema, list[str]]:
    """The schema and file list an exported folder records."""
    marker = folder / MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError) as err:
        raise ExchangeError(f"{marker} is unreadable ({err})") from None
    files = data.get("files") if isinstance(data, Mapping) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ExchangeError(f"{marker} does not list the exported files")
    if any(Path(f).is_absolute() or ".." in Path(f).parts for f in files):
        raise ExchangeError(f"{marker} lists files outside {folder}")
    return Schema.from_json(data, marker), files


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# -- importing rows back -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rows:
    """A block of exported rows: dataset positions, images, labels, split codes, truth, inputs."""

    index: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    split_codes: np.ndarray
    truth: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]


class RowImporter:
    """Write exported rows, in any block order, into a dataset file in index order."""

    def __init__(self, out: str | Path, schema: Schema, index: np.ndarray, overwrite: bool):
        unique = np.unique(index)
        if unique.size != index.size:
            raise ExchangeError("the export holds some image index more than once")
        self.position = {int(i): p for p, i in enumerate(unique)}
        self.schema = schema
        self.writer = DatasetWriter(
            out,
            int(unique.size),
            schema.image_shape,
            schema.class_names,
            manifest=schema.manifest,
            truth_columns={n: (s, d) for n, s, d in schema.truth_columns},
            extra_inputs=dict(schema.extra_inputs) or None,
            overwrite=overwrite,
        )

    def write(self, rows: Rows) -> None:
        positions = np.array([self.position[int(i)] for i in rows.index])
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
        breaks = np.flatnonzero(np.diff(positions) != 1) + 1
        for run in np.split(np.arange(positions.size), breaks):
            take = order[run]
            self.writer.write(
                int(positions[run[0]]),
                rows.images[take],
                rows.labels[take],
                rows.split_codes[take],
                {name: values[take] for name, values in rows.truth.items()},
                {name: values[take] for name, values in rows.inputs.items()} or None,
            )

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()
