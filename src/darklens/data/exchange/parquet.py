"""Parquet shards with a dataset card: the layout that Hugging Face ``datasets`` (and pandas,
polars, DuckDB, Spark) read, and that the Hub serves as is.

    OUT/README.md                                 dataset card (YAML header + description)
    OUT/darklens.json                             the export's schema and its files
    OUT/data/{split}-{k:05d}-of-{n:05d}.parquet   rows: index, image, label, split,
                                                  truth_<name>..., input_<name>...

Arrays are nested fixed-size lists (``image``: float32 [bands][height][width]); every value is
stored exactly (zstd compression), so ``darklens import`` writes back the exported file's bytes.
Each shard's schema metadata carries the darklens schema under ``darklens``, so a shard read on
its own (e.g. downloaded from the Hub) still imports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklens.data.exchange.card import dataset_card, default_license
from darklens.data.exchange.common import (
    CARD,
    ExchangeError,
    RowImporter,
    Rows,
    Schema,
    Source,
    export_rows,
    prepare_out_dir,
    split_blocks,
    write_marker,
)
from darklens.data.h5 import SPLIT_NAMES
from darklens.data.memory import open_dataset
from darklens.progress import Progress, stage_counter

SCHEMA_KEY = b"darklens"
DATA_DIR = "data"
SHARD_BYTES = 256 * 2**20  # raw bytes of images and inputs per shard (the Hub suggests < 500 MB)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ValueError(
            "Parquet needs pyarrow (a darklens dependency), which is missing: pip install pyarrow"
        ) from None
    return pyarrow


def shard_name(split: str, number: int, total: int) -> str:
    return f"{DATA_DIR}/{split}-{number:05d}-of-{total:05d}.parquet"


def export_parquet(
    source: Source,
    out_dir: str | Path,
    *,
    split: str = "all",
    overwrite: bool = False,
    license: str | None = None,
    shard_bytes: int = SHARD_BYTES,
) -> int:
    """Write a dataset (file path, ``LensDataset`` or ``InMemoryDataset``) as Parquet shards, one
    set per split, plus its dataset card; returns the number of images written.

    ``license`` goes into the card (default: ``cc-by-4.0`` for simulated datasets, ``unknown``
    for imported ones).
    """
    pa = _pyarrow()
    out_dir = Path(out_dir)
    reader = open_dataset(source)
    rows = export_rows(reader, split)
    schema = Schema.of(reader, "parquet", int(rows.size))
    per_row = 4 * (np.prod(schema.image_shape) + sum(np.prod(s) for _, s in schema.extra_inputs))
    blocks = list(split_blocks(reader, rows, max(1, int(shard_bytes // per_row))))
    files = [shard_name(name, number, total) for name, number, total, _ in blocks]
    prepare_out_dir(out_dir, overwrite)
    write_marker(out_dir, schema, files)
    (out_dir / DATA_DIR).mkdir(exist_ok=True)
    truth = {name: reader.truth(name) for name, _, _ in schema.truth_columns}  # read once
    for (_, _, _, block), relative in zip(blocks, files, strict=True):
        table = _table(pa, reader, block, schema, truth)
        pa.parquet.write_table(table, out_dir / relative, compression="zstd")
    patterns = {
        s: f"{DATA_DIR}/{s}-*.parquet" for s in SPLIT_NAMES if any(b[0] == s for b in blocks)
    }
    card = dataset_card(
        layout="parquet",
        title=_title(schema),
        image_shape=schema.image_shape,
        class_names=schema.class_names,
        labels=reader.labels[rows],
        split_codes=reader.split_codes[rows],
        manifest=schema.manifest,
        truth=schema.truth_columns,
        inputs=schema.extra_inputs,
        license=license or default_license(schema.manifest),
        data_files=patterns,
    )
    (out_dir / CARD).write_text(card, encoding="utf-8")
    return int(rows.size)


def _title(schema: Schema) -> str:
    made = schema.manifest.get("preset") or schema.manifest.get("source") or "dataset"
    return f"darklens {made}"


def _nested(pa: Any, values: np.ndarray) -> Any:
    """An Arrow array of one row per ``values[i]``: nested fixed-size lists for trailing axes."""
    array = pa.array(np.ascontiguousarray(values).reshape(-1))
    for size in reversed(values.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, int(size))
    return array


def _table(
    pa: Any, reader: Any, block: np.ndarray, schema: Schema, truth: dict[str, np.ndarray]
) -> Any:
    columns: dict[str, Any] = {
        "index": pa.array(block.astype(np.int64)),
        "image": _nested(pa, reader.images(block)),
        "label": pa.array(reader.labels[block].astype(np.int64)),
        "split": pa.array([SPLIT_NAMES[c] for c in reader.split_codes[block]], pa.string()),
    }
    for name, _, dtype in schema.truth_columns:
        columns[f"truth_{name}"] = _nested(pa, truth[name][block].astype(dtype))
    for name, _ in schema.extra_inputs:
        columns[f"input_{name}"] = _nested(pa, reader.inputs(name, block).astype(np.float32))
    table = pa.table(columns)
    return table.replace_schema_metadata({SCHEMA_KEY: json.dumps(schema.to_json(), default=str)})


# -- import --------------------------------------------------------------------------------------
def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of an export: ``path`` itself, or those under the folder (sorted)."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise ExchangeError(f"no .parquet files under {path}")
    return files


def import_parquet(
    path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, Schema]:
    """Write the rows of Parquet shards exported by darklens (a folder or one file) back into a
    dataset file, in image-index order; returns the file and the export's schema."""
    pa = _pyarrow()
    files = parquet_files(Path(path))
    schemas = [_file_schema(pa, f) for f in files]
    schema = schemas[0]
    for other, file in zip(schemas[1:], files[1:], strict=True):
        if not other.same_dataset(schema):
            raise ExchangeError(f"{file} belongs to another export than {files[0]}")
    index = np.concatenate([_read(pa, f, ["index"])["index"].to_numpy() for f in files])
    importer = RowImporter(out, schema, index, overwrite)
    advance = stage_counter(progress, "importing rows", int(index.size))
    try:
        for file in files:
            rows = _rows(_read(pa, file, None), schema, file)
            importer.write(rows)
            advance(len(rows.index))
    except BaseException:
        importer.abort()
        raise
    return importer.close(), schema


def _read(pa: Any, file: Path, columns: Sequence[str] | None) -> Any:
    try:
        return pa.parquet.read_table(file, columns=columns)
    except (OSError, pa.ArrowException) as err:
        raise ExchangeError(f"{file}: not a readable Parquet file ({err})") from None


def _file_schema(pa: Any, file: Path) -> Schema:
    try:
        arrow_schema = pa.parquet.read_schema(file)
    except (OSError, pa.ArrowException) as err:
        raise ExchangeError(f"{file}: not a readable Parquet file ({err})") from None
    metadata = arrow_schema.metadata or {}
    if SCHEMA_KEY not in metadata:
        raise ExchangeError(
            f"{file} has no darklens schema: it was not written by `darklens export --layout "
            f"parquet` (its columns: {', '.join(arrow_schema.names)})"
        )
    try:
        data = json.loads(metadata[SCHEMA_KEY])
    except ValueError as err:
        raise ExchangeError(f"{file}: unreadable darklens schema ({err})") from None
    return Schema.from_json(data, file)


def _column(table: Any, name: str, shape: Sequence[int], dtype: str, file: Path) -> np.ndarray:
    if name not in table.column_names:
        raise ExchangeError(f"{file} lacks the column {name!r} its darklens schema promises")
    array = table.column(name).combine_chunks()
    for _ in shape:
        array = array.flatten()
    values = array.to_numpy(zero_copy_only=False)
    expected = table.num_rows * int(np.prod(shape, dtype=np.int64))
    if values.size != expected or array.null_count:
        raise ExchangeError(f"{file}: column {name!r} does not hold {list(shape)} per row")
    return values.astype(dtype, copy=False).reshape(table.num_rows, *shape)


def _rows(table: Any, schema: Schema, file: Path) -> Rows:
    split = _column(table, "split", (), "object", file)
    unknown = set(split) - set(SPLIT_NAMES)
    if unknown:
        raise ExchangeError(f"{file}: unknown split name(s) {sorted(map(str, unknown))}")
    return Rows(
        index=_column(table, "index", (), "int64", file),
        images=_column(table, "image", schema.image_shape, "float32", file),
        labels=_column(table, "label", (), "int64", file),
        split_codes=np.array([SPLIT_NAMES.index(s) for s in split], dtype=np.uint8),
        truth={n: _column(table, f"truth_{n}", s, d, file) for n, s, d in schema.truth_columns},
        inputs={
            n: _column(table, f"input_{n}", s, "float32", file) for n, s in schema.extra_inputs
        },
    )
