"""Predict regression targets on files and folders: one table row per image, one column per
target and, for Gaussian-NLL heads, ``<target>_sigma`` (physical units).

Reads the same inputs as :func:`darklens.predict.batch.predict_files` (which hands regression
checkpoints to :func:`predict_values`), checked against the checkpoint's input description; the
table (CSV or Parquet) is written whole or not at all.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from darklens._atomic import atomic_output
from darklens.predict.ensemble import PathLike, as_path_list, resolve_inference_device
from darklens.predict.inputs import SkipHandler
from darklens.predict.sources import input_checker, prediction_inputs
from darklens.predict.tables import output_format
from darklens.predict.tasks import Regressor
from darklens.runs import BEST


def value_columns(names: Sequence[str], with_sigma: bool) -> list[str]:
    """The table's columns after ``id``: each target, then its σ when predicted."""
    columns = []
    for name in names:
        columns += [name] + ([f"{name}_sigma"] if with_sigma else [])
    return columns


def predict_values(
    checkpoint: PathLike | Sequence[PathLike],
    inputs: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    tta: bool = False,
    batch_size: int = 256,
    device: str = "cpu",
    skip_bad: bool = False,
    split: str | None = None,
    npz_key: str | None = None,
    recursive: bool = False,
    which: str = BEST,
    overwrite: bool = False,
    on_skip: SkipHandler | None = None,
    progress: Callable[[int], None] | None = None,
    allow_mismatch: bool = False,
) -> int:
    """Predict every image of ``inputs`` with one regression checkpoint and write the table
    ``out`` (``id``, then per target its value and σ); returns the row count."""
    fmt = output_format(out)
    sources = as_path_list(checkpoint)
    if len(sources) != 1:
        raise ValueError(f"regression checkpoints predict one at a time, got {len(sources)}")
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite to replace it")
    regressor = Regressor.from_checkpoint(
        sources[0], which, device=resolve_inference_device(device), batch_size=batch_size
    )
    if regressor.inputs_[1:]:
        raise ValueError("predicting regression targets of multi-input models is not supported")
    source = prediction_inputs(
        inputs,
        split=split,
        npz_key=npz_key,
        recursive=recursive,
        in_chans=regressor.in_chans_,
        skip_bad=skip_bad,
        on_skip=on_skip,
    )
    source.on_description = input_checker([regressor], sources, allow_mismatch)
    ids: list[str] = []
    rows: list[np.ndarray] = []
    for block_ids, images in source.blocks(batch_size):
        mean, sigma = regressor.predict(images, tta=tta)
        rows.append(
            mean if sigma is None else np.stack([mean, sigma], axis=2).reshape(len(mean), -1)
        )
        ids += [str(i) for i in block_ids]
        if progress is not None:
            progress(len(block_ids))
    if not ids:
        raise ValueError(f"no images to predict in {', '.join(map(str, source.inputs))}")
    columns = value_columns(regressor.target_names_, regressor.scaling_.has_sigma)
    _write_table(Path(out), fmt, ids, columns, np.concatenate(rows))
    return len(ids)


def _write_table(
    path: Path, fmt: str, ids: list[str], columns: list[str], values: np.ndarray
) -> None:
    with atomic_output(path) as handle:
        if fmt == "csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(["id", *columns])
            writer.writerows(
                [i, *map(repr, map(float, row))] for i, row in zip(ids, values, strict=True)
            )
            handle.write(text.getvalue().encode("utf-8"))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({"id": ids, **{c: values[:, k] for k, c in enumerate(columns)}})
            pq.write_table(table, handle)
