"""Evaluate trained checkpoints on a split of a dataset file: metrics and the standard report.

:func:`evaluate_checkpoint` predicts the split's images block by block (the file is never loaded
whole), averages the class probabilities of several checkpoints when given an ensemble, and writes
the report of :func:`darklens.evaluate.report.write_report` (``metrics.json``, figures,
``report.html``) plus ``predictions.csv`` (one row per image: dataset index, true class,
probabilities, predicted class). Gallery images are read lazily from the dataset.

Two-class (lens-finding) datasets get the lens-finding evaluation automatically: predictions at
the checkpoint's stored decision threshold (or one given), precision and recall there, the false
positives expected per true lens at a survey lens rate, the log-FPR ROC panel and the galleries
of the highest-scored non-lenses and lowest-scored lenses (see :mod:`darklens.evaluate.report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens._atomic import atomic_folder
from darklens.citations import report_citations
from darklens.data.description import check_input, describe_dataset
from darklens.data.h5 import LensDataset
from darklens.evaluate.metrics import DEFAULT_LENS_RATE, check_lens_rate, classification_metrics
from darklens.evaluate.report import write_report
from darklens.evaluate.science import TruthSpec, add_science_metrics
from darklens.predict.ensemble import (
    PathLike,
    as_path_list,
    ensemble_proba,
    ensemble_threshold,
    load_predictors,
)
from darklens.predict.predictor import Predictor, check_threshold
from darklens.predict.tables import PredictionWriter
from darklens.progress import Progress, stage_counter
from darklens.runs import HISTORY_FILE, checkpoint_json_path, read_checkpoint_meta

LIGHT_CURVES = "light_curves"
PREDICTIONS_FILE = "predictions.csv"
# Truth columns the report bins metrics by, when a dataset holds them (first match per label).
TRUTH_SPECS = (
    TruthSpec("theta_e_arcsec", "lens", "Einstein radius θ_E (arcsec)"),
    TruthSpec("arc_snr", "lens", "arc S/N (best band)", log=True),
    TruthSpec("source_magnitude", "lens", "unlensed source magnitude"),
    TruthSpec("mu_total", "lens", "total magnification μ", log=True),
    TruthSpec("axion_mass_ev", "axion", "axion mass (eV)", log=True),
    TruthSpec("subhalo_mass_total_msun", "cdm", "total subhalo mass (M☉)", log=True),
)


def check_dataset_fits(predictor: Predictor, dataset: LensDataset, source: PathLike) -> None:
    """Raise ValueError unless the dataset has the checkpoint's classes and channel count."""
    if list(dataset.class_names) != list(predictor.classes_):
        raise ValueError(
            f"{dataset.path} has classes {list(dataset.class_names)} but {source} was trained on "
            f"{predictor.classes_.tolist()}: evaluate on a dataset of the same classes, in the "
            "same order"
        )
    if dataset.image_shape[0] != predictor.in_chans_:
        raise ValueError(
            f"{dataset.path} has {dataset.image_shape[0]}-channel images but {source} takes "
            f"{predictor.in_chans_} channel(s)"
        )
    for name in predictor.inputs_[1:]:
        if name not in dataset.input_names:
            raise ValueError(
                f"{source} takes the extra input {name!r}, which {dataset.path} does not hold "
                f"(its extra inputs: {', '.join(dataset.input_names) or 'none'})"
            )
        shape = dataset.input_shape(name)
        trained = predictor.input_shapes_.get(name, shape)
        if trained != shape:
            raise ValueError(
                f"{dataset.path} has {name} shaped {shape} per example but {source} was "
                f"trained on {trained}"
            )


def split_indices(dataset: LensDataset, split: str) -> np.ndarray:
    """The split's image indices; ValueError if it is empty or holds fewer than two classes."""
    indices = dataset.split_indices(split)
    if indices.size == 0:
        raise ValueError(f"{dataset.path} has no images in split {split!r}")
    present = np.unique(dataset.labels[indices])
    if present.size < 2:
        only = dataset.class_names[int(present[0])]
        raise ValueError(
            f"split {split!r} of {dataset.path} holds only class {only!r}; the evaluation "
            "metrics (AUC) need at least two classes"
        )
    return indices


def predict_split(
    predictors: Sequence[Predictor],
    dataset: LensDataset,
    indices: np.ndarray,
    *,
    tta: bool = False,
    block_size: int = 256,
    on_block: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Ensemble probabilities [len(indices), n_classes] for the dataset images at ``indices``,
    read ``block_size`` at a time; ``on_block(n)`` is called after each block of ``n``."""
    if block_size < 1:
        raise ValueError(f"batch size must be >= 1, got {block_size}")
    blocks = []
    extras = predictors[0].inputs_[1:]
    for start in range(0, indices.size, block_size):
        block = indices[start : start + block_size]
        more = {name: dataset.inputs(name, block) for name in extras} or None
        blocks.append(ensemble_proba(predictors, dataset.images(block), tta=tta, extras=more))
        if on_block is not None:
            on_block(block.size)
    return np.concatenate(blocks)


def _light_curve_options(dataset: LensDataset, indices: np.ndarray) -> dict[str, Any]:
    """Report arguments for the light curves of a transient dataset (none for image datasets):
    the curves of the evaluated examples, each band min–max scaled per example as the models see
    them (raw fluxes hide a supernova under its lens galaxy's light), band names and epoch times
    from the manifest."""
    if LIGHT_CURVES not in dataset.input_names:
        return {}

    def scaled(positions: np.ndarray) -> np.ndarray:
        curves = dataset.inputs(LIGHT_CURVES, indices[positions]).astype(np.float64)
        low = np.nanmin(curves, axis=1, keepdims=True)
        span = np.nanmax(curves, axis=1, keepdims=True) - low
        return (curves - low) / np.where(span > 0, span, 1.0)

    options: dict[str, Any] = {
        "light_curves": scaled,
        "light_curve_label": "flux, min–max scaled per band (as the models see it)",
    }
    n_epochs, n_bands = dataset.input_shape(LIGHT_CURVES)
    bands = dataset.manifest.get("band_names")
    if isinstance(bands, list) and len(bands) == n_bands:
        options["band_names"] = [str(b) for b in bands]
    days = dataset.manifest.get("epoch_times_days")
    if isinstance(days, list) and len(days) == n_epochs:
        options["epochs_days"] = [float(d) for d in days]
    return options


def truth_context(dataset: LensDataset, indices: np.ndarray) -> dict[str, Any]:
    """What the science sections of a report need from a dataset: its truth columns for
    :data:`TRUTH_SPECS` (the total subhalo mass summed per image), the mask of non-lenses that are
    lens systems below the lens definition (look-alike ``undetectable_lens``)."""
    truth: dict[str, np.ndarray] = {}
    for spec in TRUTH_SPECS:
        if spec.column in dataset.truth_columns:
            truth[spec.column] = dataset.truth(spec.column)[indices].astype(np.float64)
    if "subhalo_mass_msun" in dataset.truth_columns:
        masses = dataset.truth("subhalo_mass_msun")[indices].astype(np.float64)
        total = np.nansum(masses.reshape(masses.shape[0], -1), axis=1)
        truth["subhalo_mass_total_msun"] = np.where(total > 0, total, np.nan)
    context: dict[str, Any] = {"truth": truth, "truth_specs": TRUTH_SPECS}
    kinds = dataset.manifest.get("lookalike_kinds")
    if isinstance(kinds, dict) and "lookalike_kind" in dataset.truth_columns:
        codes = [int(code) for code, name in kinds.items() if name == "undetectable_lens"]
        if codes:
            context["undetectable"] = np.isin(dataset.truth("lookalike_kind")[indices], codes)
    return context


def _display_options(dataset: LensDataset) -> dict[str, Any]:
    """Gallery display settings from the manifest: zero points per band, pixel scale."""
    options: dict[str, Any] = {}
    zero_points = dataset.manifest.get("magnitude_zero_points")
    if isinstance(zero_points, list) and len(zero_points) == dataset.image_shape[0]:
        options["zero_points"] = [float(z) for z in zero_points]
    scale = dataset.manifest.get("pixel_scale_arcsec")
    instrument = (dataset.manifest.get("config") or {}).get("instrument")
    if scale is None and isinstance(instrument, dict):
        scale = instrument.get("pixel_scale_arcsec")
    if isinstance(scale, (int, float)) and not isinstance(scale, bool) and scale > 0:
        options["pixel_scale_arcsec"] = float(scale)
    return options


def _title(json_paths: Sequence[Path], dataset: Path, split: str) -> str:
    first = f"{json_paths[0].parent.name}/{json_paths[0].stem}"
    more = f" + {len(json_paths) - 1} more" if len(json_paths) > 1 else ""
    return f"darklens evaluation: {first}{more} on {dataset.name} ({split})"


def evaluate_checkpoint(
    checkpoints: PathLike | Sequence[PathLike],
    data: PathLike,
    out_dir: PathLike,
    *,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
    device: str = "cpu",
    which: str = "best",
    progress: Progress | None = None,
    threshold: float | None = None,
    lens_rate: float = DEFAULT_LENS_RATE,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate one checkpoint (or the mean probabilities of several) on ``split`` of ``data``.

    ``checkpoints`` are run folders (``which`` picks best/last) or checkpoint files; they must
    agree on classes and input, and the dataset must have the same classes. ``tta`` averages
    over the 8 dihedral views. Writes the report to ``out_dir`` with the training history and
    configuration of the first checkpoint's run. A regression or denoising checkpoint gets its
    own evaluation (:func:`darklens.evaluate.tasks.evaluate_task`). Returns
    :func:`classification_metrics` plus an ``evaluation`` entry recording the checkpoints,
    dataset, split, TTA, ensemble size, image count and darklens version (also in
    ``metrics.json``).

    Two classes: predictions use ``threshold`` on the class-1 probability when given, else the
    single checkpoint's stored decision threshold, else the argmax (recorded in the
    ``evaluation`` entry as ``decision_threshold_source``); ``lens_rate`` is the survey's lens
    fraction for the false positives per true lens.

    The dataset's bands, pixel scale and flux units must match what each checkpoint was trained
    on (:mod:`darklens.data.description`) unless ``allow_mismatch``. The report folder is
    written whole or not at all (:func:`darklens._atomic.atomic_folder`); an existing ``out_dir``
    is replaced only if it is empty or an earlier report.
    """
    check_lens_rate(lens_rate)
    json_paths = [checkpoint_json_path(p, which).resolve() for p in as_path_list(checkpoints)]
    task = read_checkpoint_meta(json_paths[0])[1].get("task", "classify")
    if task != "classify":  # regression or denoising: darklens.evaluate.tasks
        from darklens.evaluate.tasks import evaluate_task

        return evaluate_task(
            task, json_paths, data, out_dir, split=split, tta=tta, batch_size=batch_size,
            device=device, progress=progress, allow_mismatch=allow_mismatch,
        )  # fmt: skip
    predictors = load_predictors(json_paths, device=device, batch_size=batch_size)
    threshold = check_threshold(threshold, len(predictors[0].classes_), "threshold")
    if threshold is None:
        threshold, threshold_source = ensemble_threshold(predictors)
    else:
        threshold_source = "given"
    with LensDataset(data) as dataset:
        check_dataset_fits(predictors[0], dataset, json_paths[0])
        given = describe_dataset(dataset.manifest, dataset.image_shape)
        for predictor, json_path in zip(predictors, json_paths, strict=True):
            check_input(
                predictor.input_description_,
                given,
                str(dataset.path),
                str(json_path),
                allow_mismatch,
            )
        indices = split_indices(dataset, split)
        labels = dataset.labels[indices]
        proba = predict_split(
            predictors,
            dataset,
            indices,
            tta=tta,
            block_size=batch_size,
            on_block=stage_counter(progress, f"evaluating {split}", int(indices.size)),
        )
        class_names = list(dataset.class_names)
        metrics = classification_metrics(
            labels, proba, class_names, threshold=threshold, lens_rate=lens_rate
        )
        metrics["evaluation"] = {
            "checkpoints": [str(p) for p in json_paths],
            "dataset": str(Path(dataset.path).resolve()),
            "split": split,
            "tta": tta,
            "ensemble_size": len(predictors),
            "n_images": int(indices.size),
            "darklens_version": __version__,
            "citations": report_citations(
                dataset.manifest, [p.checkpoint_["model"]["name"] for p in predictors]
            ),
        }
        if len(class_names) == 2:
            metrics["evaluation"]["decision_threshold_source"] = threshold_source
        add_science_metrics(
            metrics, labels, proba, class_names, threshold=threshold,
            **truth_context(dataset, indices),
        )  # fmt: skip
        history = json_paths[0].parent / HISTORY_FILE
        with atomic_folder(out_dir, replace=is_report_folder) as out:
            _write_outputs(
                out,
                metrics,
                class_names,
                labels,
                proba,
                indices,
                threshold,
                dataset,
                history if history.is_file() else None,
                predictors[0],
                json_paths,
                split,
            )
    return metrics


def is_report_folder(path: Path) -> bool:
    """Whether ``path`` may be replaced by a new report: empty, or an earlier report."""
    return not any(path.iterdir()) or (path / "metrics.json").is_file()


def _write_outputs(
    out: Path,
    metrics: dict[str, Any],
    class_names: list[str],
    labels: np.ndarray,
    proba: np.ndarray,
    indices: np.ndarray,
    threshold: float | None,
    dataset: LensDataset,
    history: Path | None,
    predictor: Predictor,
    json_paths: Sequence[Path],
    split: str,
) -> None:
    """The report and ``predictions.csv`` into the (temporary) folder ``out``."""
    write_report(
        out,
        metrics,
        class_names,
        y_true=labels,
        proba=proba,
        images=lambda positions: dataset.images(indices[positions]),
        image_ids=indices.tolist(),
        history=history,
        **_light_curve_options(dataset, indices),
        **_display_options(dataset),
        config={
            "evaluation": metrics["evaluation"],
            "training": predictor.checkpoint_.get("train_config"),
        },
        title=_title(json_paths, Path(dataset.path), split),
    )
    with PredictionWriter(
        out / PREDICTIONS_FILE, class_names, extra=("true",), overwrite=True, threshold=threshold
    ) as writer:
        writer.write(indices.tolist(), proba, {"true": [class_names[k] for k in labels]})
