"""Survey-scale prediction on Ray Data: work units streamed through actors, partitioned Parquet.

The inputs (files, folders, darklens datasets or shard sets) become work units — a whole
``.npy``/``.npz``/FITS file, or a range of rows of a dataset — that Ray Data streams through a
pool of scoring actors (each loads the checkpoints once, on its CPU or GPU); every actor reads its
units with the same readers and scores them with the same predictors as ``predict_files``, so a
row's probabilities equal the single-process table's. The output is a folder of Parquet files
(written to ``<out>.partial`` and renamed when complete) with the single-process columns plus
``unit`` and ``item`` (the row's input order: sort by them to get it back).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklens._ray import LOCAL, connect
from darklens.data.bologna import is_bologna_folder
from darklens.data.h5 import LensDataset
from darklens.predict.batch import ensemble_proba, ensemble_threshold, load_predictors
from darklens.predict.inputs import BadInputError, expand_inputs, input_kind, iter_images

ROWS_PER_UNIT = 4096  # dataset rows per work unit

PathLike = str | Path


def work_units(
    inputs: Sequence[PathLike], split: str | None, recursive: bool, rows: int = ROWS_PER_UNIT
) -> list[dict[str, Any]]:
    """One unit per image file and per ``rows`` rows of each dataset, in input order."""
    units: list[dict[str, Any]] = []
    for path in expand_inputs(list(inputs), recursive):
        if input_kind(path) != "dataset":
            units.append({"path": str(path), "start": -1, "stop": -1})
            continue
        with LensDataset(path) as dataset:
            total = len(dataset.split_indices(split or "all"))
        if total == 0:
            raise ValueError(f"{path} has no images in split {split!r}")
        units += [
            {"path": str(path), "start": s, "stop": min(s + rows, total)}
            for s in range(0, total, rows)
        ]
    return [{"unit": k, **unit} for k, unit in enumerate(units)]


class UnitScorer:
    """A Ray Data actor: loads the predictors once, then scores batches of work units."""

    def __init__(self, checkpoints: list[str], options: dict[str, Any]) -> None:
        self.options = options
        self.predictors = load_predictors(
            checkpoints,
            which=options["which"],
            device=options["device"],
            batch_size=options["batch_size"],
        )
        self.class_names = [str(c) for c in self.predictors[0].classes_]
        self.threshold, _ = ensemble_threshold(self.predictors)

    def _images(self, unit: dict[str, Any]) -> tuple[list[str], list[np.ndarray]]:
        path, start, stop = unit["path"], int(unit["start"]), int(unit["stop"])
        in_chans = self.predictors[0].in_chans_
        if start < 0:
            pairs = list(
                iter_images(
                    [path],
                    npz_key=self.options["npz_key"],
                    in_chans=in_chans,
                    skip_bad=self.options["skip_bad"],
                )
            )
            return [p[0] for p in pairs], [p[1] for p in pairs]
        with LensDataset(path) as dataset:
            rows = dataset.split_indices(self.options["split"] or "all")[start:stop]
            images = dataset.images(rows)
        if images.shape[1] != in_chans or not np.all(np.isfinite(images)):
            raise BadInputError(path, f"rows {start}:{stop} are not finite {in_chans}-channel")
        return [f"{path}[{i}]" for i in rows], list(images)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids: list[str] = []
        images: list[np.ndarray] = []
        units: list[int] = []
        items: list[int] = []
        for k in range(len(batch["unit"])):
            unit = {name: batch[name][k] for name in batch}
            unit_ids, unit_images = self._images(unit)
            ids += unit_ids
            images += unit_images
            units += [int(unit["unit"])] * len(unit_ids)
            items += list(range(len(unit_ids)))
        if not images:
            return _empty_columns(self.class_names)
        proba = ensemble_proba(self.predictors, np.stack(images), tta=self.options["tta"])
        # as PredictionWriter decides: the checkpoint's threshold on class 1, else the argmax
        if self.threshold is None:
            best = proba.argmax(axis=1)
        else:
            best = (proba[:, 1] > self.threshold).astype(np.int64)
        columns = {
            "unit": np.asarray(units, dtype=np.int64),
            "item": np.asarray(items, dtype=np.int64),
            "id": np.asarray(ids, dtype=object),
        }
        for k, name in enumerate(self.class_names):
            columns[f"p_{name}"] = proba[:, k]
        columns["predicted"] = np.asarray([self.class_names[k] for k in best], dtype=object)
        columns["confidence"] = proba[np.arange(len(ids)), best]
        return columns


def _empty_columns(class_names: Sequence[str]) -> dict[str, np.ndarray]:
    columns = {"unit": np.zeros(0, np.int64), "item": np.zeros(0, np.int64)}
    columns["id"] = np.zeros(0, dtype=object)
    columns |= {f"p_{name}": np.zeros(0) for name in class_names}
    return columns | {"predicted": np.zeros(0, dtype=object), "confidence": np.zeros(0)}


def predict_ray(
    checkpoints: PathLike | Sequence[PathLike],
    inputs: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    address: str = LOCAL,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    tta: bool = False,
    batch_size: int = 256,
    device: str = "cpu",
    skip_bad: bool = False,
    split: str | None = None,
    npz_key: str | None = None,
    recursive: bool = False,
    which: str = "best",
    overwrite: bool = False,
) -> int:
    """Score every image of ``inputs`` on the Ray cluster at ``address`` with ``workers``
    scoring actors; write the folder ``out`` of Parquet files; return the number of rows."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    if workers < 1 or batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1")
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if any(is_bologna_folder(Path(p)) for p in paths):
        raise ValueError("--ray does not read Bologna challenge folders; predict them without it")
    sources = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
    first = load_predictors(sources, which=which, device="cpu")[0]  # checked before any work
    if len(first.inputs_) > 1:
        raise ValueError("--ray predicts image-only models; this one also takes extra inputs")
    units = work_units(paths, split, recursive)
    ray = connect(address)
    options = dict(
        which=which,
        device=device,
        batch_size=batch_size,
        tta=tta,
        split=split,
        npz_key=npz_key,
        skip_bad=skip_bad,
    )
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    scored = ray.data.from_items(units).map_batches(
        UnitScorer,
        fn_constructor_args=([str(s) for s in sources], options),
        batch_size=1,
        concurrency=workers,
        num_gpus=gpus_per_worker,
    )
    scored.write_parquet(str(partial))
    rows = sum(
        _parquet_rows(partial / name) for name in os.listdir(partial) if name.endswith(".parquet")
    )
    if rows == 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ValueError(f"no images to predict in {', '.join(map(str, paths))}")
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(partial, out)
    return rows


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def read_predictions(out: PathLike):
    """The table of a ``predict_ray`` folder in input order (a pyarrow Table)."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(out))
    return table.sort_by([("unit", "ascending"), ("item", "ascending")])
