"""Predict on files and folders with a checkpoint or an ensemble of them; write one table.

The table has one row per image: ``id`` (file path, ``path[k]`` for an image of a stack or a
dataset), one ``p_<class>`` probability column per class, ``predicted`` (the class name) and
``confidence`` (its probability). An ensemble averages the class probabilities of its members;
they must agree on class names and input (channels, image size). The table is written to
``<out>.partial`` block by block and renamed when complete, so an interrupted run never leaves a
file that looks whole. CSV by default; Parquet when the name ends ``.parquet`` (pyarrow is a
dependency).

Two-class (lens-finding) checkpoints: ``predicted`` follows the checkpoint's decision threshold
(lens when ``p_<class 1>`` exceeds it; see :class:`Predictor`) for a single checkpoint; an
ensemble's averaged score has no validated threshold, so it uses the argmax. With ``rank`` the
rows are sorted by the class-1 probability (the lens score), highest first, and a ``rank``
column (1 = most lens-like) comes first; ranking keeps every row's id and probabilities in
memory until the end (never the images).

A Bologna Lens Finding Challenge folder (holding ``Public/Band1``...) given as the only input is
read as the challenge's images, bands stacked in folder order and masked pixels filled as in
:func:`darklens.data.bologna.import_bologna` (``mask_value`` 100 and ``mask_fill`` zero unless
given), with the challenge ID as the row id: the way to score the unlabelled challenge test set.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from darklens._atomic import AtomicWriter
from darklens.data.bologna import (
    MASK_VALUE,
    MaskFill,
    is_bologna_folder,
    iter_bologna_images,
    scan_band_files,
)
from darklens.data.deeplense import SkippedFile
from darklens.data.description import InputDescription, band_order, check_input
from darklens.data.h5 import LensDataset
from darklens.predict.inputs import (
    DATASET_SUFFIXES,
    BadInputError,
    PredictionInputs,
    SkipHandler,
    SkippedInput,
    expand_inputs,
    input_kind,
    iter_blocks,
)
from darklens.predict.predictor import Predictor, check_threshold

OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet"}
PROBABILITY_DIGITS = ".17g"  # exact float64 text: scores near 1 must not round into ties

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
                f"checkpoints disagree on classes: {source} has {member.classes_.tolist()}, "
                f"{first_source} has {first.classes_.tolist()}; ensemble only models of one task"
            )
        if member.inputs_ != first.inputs_ or member.input_shapes_ != first.input_shapes_:
            raise ValueError(
                f"checkpoints disagree on inputs: {source} takes {member.inputs_} "
                f"{member.input_shapes_}, {first_source} {first.inputs_} {first.input_shapes_}"
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
    from darklens.device import resolve_device

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


def ensemble_threshold(predictors: Sequence[Predictor]) -> tuple[float | None, str]:
    """The decision threshold for the ensemble's averaged score, and where it comes from.

    A single member's own threshold applies; the averaged score of several members was never
    validated, so an ensemble (like a checkpoint without one) predicts by argmax.
    """
    if len(predictors) == 1 and predictors[0].threshold_ is not None:
        return predictors[0].threshold_, "checkpoint"
    if len(predictors) > 1:
        return None, "argmax (an ensemble's averaged score has no validated threshold)"
    return None, "argmax (the checkpoint stores no decision threshold)"


def ensemble_proba(
    predictors: Sequence[Predictor],
    images: np.ndarray,
    *,
    tta: bool = False,
    extras: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Mean class probabilities [N, n_classes] (float64) of the members on ``images`` (and the
    extra inputs of multi-input models)."""
    total = predictors[0].predict_proba(images, tta=tta, extras=extras)
    for member in predictors[1:]:
        total = total + member.predict_proba(images, tta=tta, extras=extras)
    return total / len(predictors)


def dataset_blocks(
    path: PathLike, split: str | None, extras: Sequence[str], size: int
) -> Iterator[tuple[list[str], np.ndarray, dict[str, np.ndarray]]]:
    """Blocks of (ids, images, extra inputs) from a darklens dataset file, for models that take
    more than images; ids as :mod:`darklens.predict.inputs` names them (``file[index]``)."""
    with LensDataset(path) as dataset:
        missing = [name for name in extras if name not in dataset.input_names]
        if missing:
            raise ValueError(
                f"{path} lacks the extra input(s) {', '.join(missing)} that the model takes "
                f"(it holds: {', '.join(dataset.input_names) or 'none'})"
            )
        indices = dataset.split_indices(split or "all")
        if indices.size == 0:
            raise ValueError(f"{path} has no images in split {split!r}")
        for start in range(0, indices.size, size):
            block = indices[start : start + size]
            ids = [f"{path}[{i}]" for i in block]
            yield ids, dataset.images(block), {n: dataset.inputs(n, block) for n in extras}


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


# -- inputs --------------------------------------------------------------------------------------
class BolognaInputs:
    """The images of a Bologna challenge folder, with the interface of ``PredictionInputs``."""

    def __init__(
        self,
        root: Path,
        in_chans: int,
        skip_bad: bool,
        on_skip: SkipHandler | None,
        mask_value: float = MASK_VALUE,
        mask_fill: MaskFill = "zero",
    ) -> None:
        self.inputs = [root]
        self.in_chans = in_chans
        self.mask_value = mask_value
        self.mask_fill = mask_fill
        self.skip_bad = skip_bad
        self.on_skip = on_skip
        self.skipped: list[SkippedInput] = []
        self.band_names: tuple[str, ...] = scan_band_files(root).survey.bands
        self.order: list[int] | None = None  # channel permutation into the model's band order
        self.coordinates: dict[str, tuple[float, float]] = {}

    def _skip(self, problem: SkippedFile) -> None:
        skipped = SkippedInput(problem.path, problem.reason)
        self.skipped.append(skipped)
        if self.on_skip is not None:
            self.on_skip(skipped)

    def _images(self) -> Iterator[tuple[str, np.ndarray]]:
        for image_id, image in iter_bologna_images(
            self.inputs[0],
            mask_value=self.mask_value,
            mask_fill=self.mask_fill,
            skip_bad=self.skip_bad,
            on_skip=self._skip,
        ):
            if self.order is not None:
                image = image[self.order]
            if image.shape[0] != self.in_chans:
                raise BadInputError(
                    f"ID {image_id}",
                    f"has {image.shape[0]} band(s) but the model takes {self.in_chans} "
                    "channel(s): use a model trained on this challenge set",
                )
            yield image_id, image

    def blocks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        return iter_blocks(self._images(), size)


def prediction_inputs(
    inputs: PathLike | Sequence[PathLike],
    *,
    in_chans: int,
    skip_bad: bool,
    on_skip: SkipHandler | None,
    split: str | None = None,
    npz_key: str | None = None,
    recursive: bool = False,
    mask_value: float | None = None,
    mask_fill: MaskFill | None = None,
) -> PredictionInputs | BolognaInputs:
    """The image stream of ``inputs``: a lone Bologna challenge folder, or files and folders.

    ``mask_value`` / ``mask_fill`` (default 100 / zero) apply to Bologna folders only.
    """
    paths = as_path_list(inputs)
    if len(paths) == 1 and is_bologna_folder(paths[0]):
        value = MASK_VALUE if mask_value is None else mask_value
        fill = "zero" if mask_fill is None else mask_fill
        return BolognaInputs(paths[0], in_chans, skip_bad, on_skip, value, fill)
    if mask_value is not None or mask_fill is not None:
        raise ValueError(
            "mask_value / mask_fill (--mask-value / --mask-fill) apply only to a Bologna "
            f"challenge folder given alone (holding Public/Band1...), not to {paths[0]}"
            + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        )
    return PredictionInputs(
        paths,
        split=split,
        npz_key=npz_key,
        recursive=recursive,
        in_chans=in_chans,
        skip_bad=skip_bad,
        on_skip=on_skip,
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
    rank: bool = False,
    on_skip: SkipHandler | None = None,
    progress: bool = False,
    mask_value: float | None = None,
    mask_fill: MaskFill | None = None,
    allow_mismatch: bool = False,
) -> int:
    """Predict every image of ``inputs`` (files/folders, see :mod:`darklens.predict.inputs`) with
    one checkpoint or the mean of several, and write the table ``out``; returns its row count.

    ``tta`` averages over the 8 dihedral views. Bad inputs raise, or with ``skip_bad`` are left
    out and passed to ``on_skip``. ``rank`` (two-class checkpoints) sorts the rows by lens score,
    highest first, and adds a ``rank`` column. ``mask_value`` / ``mask_fill`` set how masked
    pixels of a Bologna challenge folder are filled (see :func:`prediction_inputs`). Raises
    ValueError (writing nothing) if no image is left.

    Datasets (their manifest), FITS files (their WCS pixel scale) and Bologna folders (their
    band names) are checked against what the checkpoints were trained on
    (:mod:`darklens.data.description`), refused on a mismatch unless ``allow_mismatch``;
    Bologna bands are put in the model's band order when both are named. FITS inputs add
    ``ra_deg`` / ``dec_deg`` columns (the image centre; empty without a celestial WCS).
    """
    output_format(out)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    predictors = load_predictors(checkpoints, which=which, device=device, batch_size=batch_size)
    class_names = list(predictors[0].classes_)
    if rank and len(class_names) != 2:
        raise ValueError(
            f"--rank sorts by lens score and needs a two-class checkpoint; this one has classes "
            f"{', '.join(class_names)}"
        )
    source = prediction_inputs(
        inputs,
        split=split,
        npz_key=npz_key,
        recursive=recursive,
        in_chans=predictors[0].in_chans_,
        skip_bad=skip_bad,
        on_skip=on_skip,
        mask_value=mask_value,
        mask_fill=mask_fill,
    )
    check = _input_checker(predictors, as_path_list(checkpoints), allow_mismatch)
    if isinstance(source, BolognaInputs):
        source.order = _bologna_order(predictors[0], source)
        check(str(source.inputs[0]), InputDescription(band_names=source.band_names))
    else:
        source.on_description = check
    coordinates = not isinstance(source, BolognaInputs) and any(
        input_kind(p) == "fits" for p in expand_inputs(source.inputs, recursive)
    )
    extras = predictors[0].inputs_[1:]
    if extras:
        paths = as_path_list(inputs)
        if len(paths) != 1 or paths[0].suffix.lower() not in DATASET_SUFFIXES:
            raise ValueError(
                f"this model takes {', '.join(predictors[0].inputs_)}: predict on one darklens "
                "dataset file (.h5) that holds them (e.g. from darklens simulate or "
                "import-deepgravilens)"
            )
        blocks = dataset_blocks(paths[0], split, extras, batch_size)
    else:
        blocks = ((ids, images, None) for ids, images in source.blocks(batch_size))
    threshold, _ = ensemble_threshold(predictors)
    columns = COORDINATE_COLUMNS if coordinates else ()
    with (
        PredictionWriter(
            out, class_names, overwrite=overwrite, threshold=threshold, ranked=rank, extra=columns
        ) as writer,
        progress_counter(progress, "predicting") as bar,
    ):
        task = bar.add_task("predicting", total=None)
        collected: list[tuple[list[str], np.ndarray]] = []
        for ids, images, more in blocks:
            proba = ensemble_proba(predictors, images, tta=tta, extras=more)
            if rank:
                collected.append((ids, proba))
            else:
                writer.write(ids, proba, _coordinate_values(source, ids, columns))
            bar.advance(task, len(ids))
        if rank and collected:
            _write_ranked(writer, collected, batch_size, source, columns)
        if writer.rows == 0:
            skipped = f" ({len(source.skipped)} skipped as bad)" if source.skipped else ""
            raise ValueError(
                f"no images to predict in {', '.join(map(str, source.inputs))}{skipped}"
            )
    return writer.rows


def lens_score_order(score: np.ndarray) -> np.ndarray:
    """Row order by decreasing lens score; equal scores keep their input order."""
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")


def _write_ranked(
    writer: PredictionWriter,
    collected: list[tuple[list[str], np.ndarray]],
    block: int,
    source: PredictionInputs | BolognaInputs,
    columns: Sequence[str],
) -> None:
    ids = [item for block_ids, _ in collected for item in block_ids]
    proba = np.concatenate([p for _, p in collected])
    order = lens_score_order(proba[:, 1])
    for start in range(0, order.size, block):
        rows = order[start : start + block]
        row_ids = [ids[i] for i in rows]
        writer.write(
            row_ids,
            proba[rows],
            _coordinate_values(source, row_ids, columns),
            ranks=range(start + 1, start + 1 + rows.size),
        )


COORDINATE_COLUMNS = ("ra_deg", "dec_deg")


def _coordinate_values(
    source: PredictionInputs | BolognaInputs, ids: Sequence[str], columns: Sequence[str]
) -> dict[str, list[str]] | None:
    """RA/Dec text per row (empty where the file has no celestial WCS), or None."""
    if not columns:
        return None
    centres = [source.coordinates.get(i) for i in ids]
    return {
        name: ["" if c is None else format(c[k], ".10g") for c in centres]
        for k, name in enumerate(columns)
    }


def _input_checker(
    predictors: Sequence[Predictor], sources: Sequence[Path], allow_mismatch: bool
) -> Any:
    """A callback ``(input, description)`` that checks the input against every member."""

    def check(source: str, description: InputDescription) -> None:
        for predictor, checkpoint in zip(predictors, sources, strict=True):
            check_input(
                predictor.input_description_, description, source, str(checkpoint),
                allow_mismatch,
            )

    return check


def _bologna_order(predictor: Predictor, source: BolognaInputs) -> list[int] | None:
    """The permutation putting a Bologna folder's bands in the model's order (None: keep)."""
    trained = predictor.input_description_
    if trained is None or not trained.band_names:
        return None
    order = band_order(trained.band_names, source.band_names)
    return None if order == list(range(len(source.band_names))) else order
