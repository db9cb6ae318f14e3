"""Predict on files and folders with a checkpoint or an ensemble of them; write one table.

The pieces: :mod:`.sources` (what is read, checked against the checkpoints), :mod:`.ensemble`
(loading and averaging checkpoints), :mod:`.tables` (the CSV/Parquet table). Two-class
(lens-finding) checkpoints: ``predicted`` follows the checkpoint's decision threshold for a single
checkpoint, the argmax for an ensemble; with ``rank`` the rows are sorted by the class-1
probability (the lens score), highest first, and a ``rank`` column (1 = most lens-like) comes
first; ranking keeps every row's id and probabilities in memory until the end (never the images).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from darklens.data.bologna import MaskFill
from darklens.data.description import InputDescription
from darklens.predict.ensemble import (
    PathLike,
    as_path_list,
    ensemble_proba,
    ensemble_threshold,
    load_predictors,
)
from darklens.predict.inputs import (
    DATASET_SUFFIXES,
    PredictionInputs,
    SkipHandler,
    expand_inputs,
    input_kind,
)
from darklens.predict.sources import (
    BolognaInputs,
    bologna_order,
    coordinate_values,
    dataset_blocks,
    input_checker,
    prediction_inputs,
)
from darklens.predict.tables import (
    COORDINATE_COLUMNS,
    PredictionWriter,
    lens_score_order,
    output_format,
)
from darklens.runs import BEST, checkpoint_json_path, read_checkpoint_meta


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
    which: str = BEST,
    overwrite: bool = False,
    rank: bool = False,
    on_skip: SkipHandler | None = None,
    progress: Callable[[int], None] | None = None,
    mask_value: float | None = None,
    mask_fill: MaskFill | None = None,
    allow_mismatch: bool = False,
) -> int:
    """Predict every image of ``inputs`` (files/folders, see :mod:`darklens.predict.inputs`) with
    one checkpoint or the mean of several, and write the table ``out``; returns its row count.

    ``tta`` averages over the 8 dihedral views; ``progress`` is called with the number of images
    done after each block. Bad inputs raise, or with ``skip_bad`` are left
    out and passed to ``on_skip``. ``rank`` (two-class checkpoints) sorts the rows by lens score,
    highest first, and adds a ``rank`` column. ``mask_value`` / ``mask_fill`` set how masked
    pixels of a Bologna challenge folder are filled (see :func:`prediction_inputs`). Raises
    ValueError (writing nothing) if no image is left.

    Datasets (their manifest), FITS files (their WCS pixel scale) and Bologna folders (their
    band names) are checked against what the checkpoints were trained on
    (:mod:`darklens.data.description`), refused on a mismatch unless ``allow_mismatch``;
    Bologna bands are put in the model's band order when both are named. FITS inputs add
    ``ra_deg`` / ``dec_deg`` columns (the image centre; empty without a celestial WCS).

    A regression checkpoint writes its targets instead of class probabilities
    (:func:`darklens.predict.values.predict_values`).
    """
    output_format(out)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    first = checkpoint_json_path(as_path_list(checkpoints)[0], which)
    if read_checkpoint_meta(first)[1].get("task", "classify") == "regress":
        if rank or mask_value is not None or mask_fill is not None:
            raise ValueError("rank and mask options apply to classifiers, not regression models")
        from darklens.predict.values import predict_values

        return predict_values(
            checkpoints, inputs, out, tta=tta, batch_size=batch_size, device=device,
            skip_bad=skip_bad, split=split, npz_key=npz_key, recursive=recursive, which=which,
            overwrite=overwrite, on_skip=on_skip, progress=progress,
            allow_mismatch=allow_mismatch,
        )  # fmt: skip
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
    check = input_checker(predictors, as_path_list(checkpoints), allow_mismatch)
    if isinstance(source, BolognaInputs):
        source.order = bologna_order(predictors[0], source)
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
    with PredictionWriter(
        out, class_names, overwrite=overwrite, threshold=threshold, ranked=rank, extra=columns
    ) as writer:
        collected: list[tuple[list[str], np.ndarray]] = []
        for ids, images, more in blocks:
            proba = ensemble_proba(predictors, images, tta=tta, extras=more)
            if rank:
                collected.append((ids, proba))
            else:
                writer.write(ids, proba, coordinate_values(source, ids, columns))
            if progress is not None:
                progress(len(ids))
        if rank and collected:
            _write_ranked(writer, collected, batch_size, source, columns)
        if writer.rows == 0:
            skipped = f" ({len(source.skipped)} skipped as bad)" if source.skipped else ""
            raise ValueError(
                f"no images to predict in {', '.join(map(str, source.inputs))}{skipped}"
            )
    return writer.rows


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
            coordinate_values(source, row_ids, columns),
            ranks=range(start + 1, start + 1 + rows.size),
        )
