"""Prediction tables: one row per image, written block by block to CSV or Parquet.

The table has one row per image: ``id`` (file path, ``path[k]`` for an image of a stack or a
dataset), one ``p_<class>`` probability column per class, ``predicted`` (the class name) and
``confidence`` (its probability), optionally ``rank`` first (lens-score order) and string columns
after ``id`` (``true`` in evaluation, ``ra_deg``/``dec_deg`` for FITS inputs). Written to
``<out>.partial`` and renamed when complete, so an interrupted run never leaves a file that looks
whole. CSV by default; Parquet when the name ends ``.parquet``. Probabilities are written with 17
significant digits: scores near 1 must not round into ties.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklens._atomic import AtomicWriter
from darklens.predict.predictor import check_threshold

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}
PROBABILITY_DIGITS = ".17g"  # exact float64 text: scores near 1 must not round into ties
COORDINATE_COLUMNS = ("ra_deg", "dec_deg")

PathLike = str | Path


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


class PredictionWriter(AtomicWriter):
    """Write prediction rows block by block to a CSV or Parquet file, published on close.

    ``extra`` names string columns placed after ``id`` (e.g. ``true`` for evaluation).
    ``threshold`` (two classes) makes ``predicted`` class 1 where its probability exceeds it,
    instead of the argmax. ``ranked`` adds an integer ``rank`` column before ``id``.
    """

    def __init__(
        self,
        path: PathLike,
        class_names: Sequence[str],
        *,
        extra: Sequence[str] = (),
        overwrite: bool = False,
        threshold: float | None = None,
        ranked: bool = False,
    ) -> None:
        self.format = output_format(path)
        super().__init__(path, overwrite)
        self.class_names = [str(c) for c in class_names]
        self.threshold = check_threshold(threshold, len(self.class_names), "threshold")
        self.ranked = ranked
        self.extra = list(extra)
        self.columns = [
            *(["rank"] if ranked else []),
            "id",
            *self.extra,
            *probability_columns(self.class_names),
            "predicted",
            "confidence",
        ]
        self.rows = 0
        self._csv_file = None
        self._parquet = None
        if self.format == "csv":
            self._csv_file = self.partial.open("w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(self.columns)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            text = {"id", "predicted", *self.extra}
            types = {c: pa.string() if c in text else pa.float64() for c in self.columns}
            types["rank"] = pa.int64()
            self._schema = pa.schema([(c, types[c]) for c in self.columns])
            self._parquet = pq.ParquetWriter(self.partial, self._schema)

    def write(
        self,
        ids: Sequence[Any],
        proba: np.ndarray,
        extra: dict[str, Sequence[Any]] | None = None,
        ranks: Sequence[int] | None = None,
    ) -> None:
        """Append rows: ``proba`` [n, n_classes] for ``ids``; ``extra`` values per extra column;
        ``ranks`` when the writer is ``ranked``."""
        proba = np.asarray(proba, dtype=np.float64)
        if proba.shape != (len(ids), len(self.class_names)):
            raise ValueError(
                f"expected probabilities of shape ({len(ids)}, {len(self.class_names)}), "
                f"got {proba.shape}"
            )
        extra = extra or {}
        if sorted(extra) != sorted(self.extra):
            raise ValueError(f"expected values for the columns {self.extra}, got {sorted(extra)}")
        if self.ranked != (ranks is not None) or (ranks is not None and len(ranks) != len(ids)):
            raise ValueError("a ranked writer needs one rank per row, an unranked one none")
        if self.threshold is None:
            best = proba.argmax(axis=1)
        else:
            best = (proba[:, 1] > self.threshold).astype(np.int64)
        columns: dict[str, list[Any]] = {"id": [str(i) for i in ids]}
        if ranks is not None:
            columns["rank"] = [int(r) for r in ranks]
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
        """Finish the file and move it into place (a failed flush leaves no ``.partial``)."""
        try:
            self._close_handles()
        except BaseException:
            self._discard()
            raise
        return self._publish()

    def abort(self) -> None:
        self._abort_then_discard(self._close_handles)


def _csv_cell(value: Any) -> str:
    return format(value, PROBABILITY_DIGITS) if isinstance(value, float) else value


def lens_score_order(score: np.ndarray) -> np.ndarray:
    """Row order by decreasing lens score; equal scores keep their input order."""
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
