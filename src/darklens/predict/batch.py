"""Predict on files and folders with a checkpoint or an ensemble of them; write one table.

The table has one row per image: ``id`` (file path, ``path[k]`` for an image of a stack or a
dataset), one ``p_<class>`` probability column per class, ``predicted`` (the class name) and
``confidence`` (its probability). An ensemble averages the class probabilities of its members;
they must agree on class names and input (channels, image size). The table is written to
``<out>.partial`` block by block and renamed when complete, so an interrupted run never leaves a
file that looks whole. CSV by default; Parquet when the name ends ``.parquet`` (needs pyarrow).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from darklens.predict.inputs import PredictionInputs, SkipHandler
from darklens.predict.predictor import Predictor

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}
PROBABILITY_DIGITS = ".10g"  # CSV text of a probability: float64 mean of float32 softmaxes

PathLike = str | Path


# -- checkpoints ---------------------------------------------------------------------------------
def as_path_list(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    """One path or several as a list of paths (a bare string is one path)."""
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def check_ensemble(predictors: Sequence[Predictor], sources: Sequence[PathLike]) -> None:
    """Raise ValueError unless every member has the first one's classes, channels and size."""
    if not predictors:
        raise ValueError("no checkpoints given: pass at least one run folder or checkpoint")
    first, first_source = predictors[0], sources[0]
    for member, source in zip(predictors[1:], sources[1:], strict=True):
        if list(member.classes_) != list(first.classes_):
            raise ValueError(
                f"checkpoints disagree on classes: {source} has {list(member.classes_)}, "
                f"{first_source} has {list(first.classes_)}; ensemble only models of one task"
            )
        theirs = (member.in_chans_, member.img_size_)
        mine = (first.in_chans_, first.img_size_)
        if theirs != mine:
            raise ValueError(
                f"checkpoints disagree on input: {source} takes {theirs[0]} channel(s) at "
                f"{theirs[1]} px, {first_source} {mine[0]} at {mine[1]} px"
            )


def resolve_inference_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; other names are checked."""
    from darklens.train.trainer import resolve_device

    return str(resolve_device(device))


def load_predictors(
    checkpoints: PathLike | Sequence[PathLike],
    *,
    which: str = "best",
    device: str = "cpu",
    batch_size: int = 256,
) -> list[Predictor]:
    """A :class:`Predictor` per checkpoint (run folder or checkpoint file), checked to ensemble."""
    sources = as_path_list(checkpoints)
    torch_device = resolve_inference_device(device)
    predictors = [
        Predictor.from_checkpoint(s, which, device=torch_device, batch_size=batch_size)
        for s in sources
    ]
    check_ensemble(predictors, sources)
    return predictors


def ensemble_proba(
    predictors: Sequence[Predictor], images: np.ndarray, *, tta: bool = False
) -> np.ndarray:
    """Mean class probabilities [N, n_classes] (float64) of the members on ``images``."""
    total = predictors[0].predict_proba(images, tta=tta)
    for member in predictors[1:]:
        total = total + member.predict_proba(images, tta=tta)
    return total / len(predictors)


# -- output table --------------------------------------------------------------------------------
def output_format(path: PathLike) -> str:
    """``csv`` or ``parquet`` from the output name; Parquet is checked to be writable."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(
            f"cannot write predictions to {path}: the name must end in "
            f"{' or '.join(OUTPUT_FORMATS)}"
        )
    if OUTPUT_FORMATS[suffix] == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ValueError(
                f"writing {path} needs pyarrow, which is not installed: `pip install pyarrow`, "
                "or name the output .csv"
            ) from None
    return OUTPUT_FORMATS[suffix]


def probability_columns(class_names: Sequence[str]) -> list[str]:
    return [f"p_{name}" for name in class_names]


class PredictionWriter:
    """Write prediction rows block by block to a CSV or Parquet file, published on close.

    ``extra`` names string columns placed after ``id`` (e.g. ``true`` for evaluation).
    """

    def __init__(
        self,
        path: PathLike,
        class_names: Sequence[str],
        *,
        extra: Sequence[str] = (),
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.format = output_format(self.path)
        if self.path.exists() and not overwrite:
            raise FileExistsError(f"{self.path} exists; pass overwrite=True (CLI: --overwrite)")
        self.class_names = [str(c) for c in class_names]
        self.extra = list(extra)
        self.columns = [
            "id",
            *self.extra,
            *probability_columns(self.class_names),
            "predicted",
            "confidence",
        ]
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._csv_file = None
        self._parquet = None
        if self.format == "csv":
            self._csv_file = self._partial.open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(self.columns)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            text = {"id", "predicted", *self.extra}
            self._schema = pa.schema(
                [(c, pa.string() if c in text else pa.float64()) for c in self.columns]
            )
            self._parquet = pq.ParquetWriter(self._partial, self._schema)

    def write(
        self, ids: Sequence[Any], proba: np.ndarray, extra: dict[str, Sequence[Any]] | None = None
    ) -> None:
        """Append rows: ``proba`` [n, n_classes] for ``ids``; ``extra`` values per extra column."""
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape != (len(ids), len(self.class_names)):
            raise ValueError(
                f"expected probabilities of shape ({len(ids)}, {len(self.class_names)}), "
                f"got {proba.shape}"
            )
        extra = extra or {}
        if sorted(extra) != sorted(self.extra):
            raise ValueError(f"expected values for the columns {self.extra}, got {sorted(extra)}")
        best = proba.argmax(axis=1)
        columns: dict[str, list[Any]] = {"id": [str(i) for i in ids]}
        columns.update({name: [str(v) for v in extra[name]] for name in self.extra})
        for k, name in enumerate(probability_columns(self.class_names)):
            columns[name] = proba[:, k].tolist()
        columns["predicted"] = [self.class_names[k] for k in best]
        columns["confidence"] = proba[np.arange(len(ids)), best].tolist()
        if self._parquet is not None:
            import pyarrow as pa

            self._parquet.write_table(pa.Table.from_pydict(columns, schema=self._schema))
        else:
            self._csv.writerows(
                [_csv_cell(columns[c][row]) for c in self.columns] for row in range(len(ids))
            )
        self.rows += len(ids)

    def _close_handles(self) -> None:
        if self._csv_file is not None:
            self._csv_file.close()
        if self._parquet is not None:
            self._parquet.close()

    def close(self) -> Path:
        """Finish the file and move it into place."""
        self._close_handles()
        os.replace(self._partial, self.path)
        return self.path

    def abort(self) -> None:
        self._close_handles()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _csv_cell(value: Any) -> str:
    return format(value, PROBABILITY_DIGITS) if isinstance(value, float) else value


def progress_counter(enabled: bool, description: str) -> Progress:
    """A transient stderr counter of images done (totals are unknown while streaming)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,.0f} images"),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


# -- the command ---------------------------------------------------------------------------------
def predict_files(
    checkpoints: PathLike | Sequence[PathLike],
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
    which: str = "best",
    overwrite: bool = False,
    on_skip: SkipHandler | None = None,
    progress: bool = False,
) -> int:
    """Predict every image of ``inputs`` (files/folders, see :mod:`darklens.predict.inputs`) with
    one checkpoint or the mean of several, and write the table ``out``; returns its row count.

    ``tta`` averages over the 8 dihedral views. Bad inputs raise, or with ``skip_bad`` are left
    out and passed to ``on_skip``. Raises ValueError (writing nothing) if no image is left.
    """
    output_format(out)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    predictors = load_predictors(checkpoints, which=which, device=device, batch_size=batch_size)
    source = PredictionInputs(
        as_path_list(inputs),
        split=split,
        npz_key=npz_key,
        recursive=recursive,
        in_chans=predictors[0].in_chans_,
        skip_bad=skip_bad,
        on_skip=on_skip,
    )
    with (
        PredictionWriter(out, list(predictors[0].classes_), overwrite=overwrite) as writer,
        progress_counter(progress, "predicting") as bar,
    ):
        task = bar.add_task("predicting", total=None)
        for ids, images in source.blocks(batch_size):
            writer.write(ids, ensemble_proba(predictors, images, tta=tta))
            bar.advance(task, len(ids))
        if writer.rows == 0:
            skipped = f" ({len(source.skipped)} skipped as bad)" if source.skipped else ""
            raise ValueError(
                f"no images to predict in {', '.join(map(str, source.inputs))}{skipped}"
            )
    return writer.rows
