"""Evaluation figures written straight to PNG files.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: nothing global changes (no backend switch, no open-figure registry), so these functions
are safe in scripts, tests and worker processes. Each takes its data and an output path and returns
the path it wrote.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from darklens.evaluate.metrics import (
    auc_trapezoid,
    check_class_names,
    check_multiclass,
    micro_roc_curve,
    pr_auc,
    precision_recall_curve_binary,
    roc_curve_binary,
)

DPI = 110
STRETCHES = ("asinh", "minmax")
ASINH_SOFTENING = 0.05  # fraction of each image's range where asinh turns from linear to log

# Column names accepted for each curve of a training history, first match wins.
HISTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "epoch": ("epoch",),
    "train_loss": ("train_loss", "loss"),
    "val_loss": ("val_loss",),
    "train_accuracy": ("train_accuracy", "train_acc", "accuracy", "acc"),
    "val_accuracy": ("val_accuracy", "val_acc"),
    "val_macro_auc": ("val_macro_auc", "val_auc", "val_auc_macro", "macro_auc"),
}


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    return out


# ------------------------------------------------------------------------------------------ ROC


def _macro_average_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Mean TPR of several ROC curves on the union of their FPR points."""
    grid = np.unique(np.concatenate([fpr for fpr, _ in curves]))
    mean_tpr = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves], axis=0)
    return grid, mean_tpr


def plot_roc(y_true: Any, proba: Any, class_names: Sequence[str], path: str | Path) -> Path:
    """One-vs-rest ROC curve of each class plus micro- and macro-average curves and chance line.

    Classes absent from ``y_true`` have no curve and are marked "absent" in the legend.
    """
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    figure = _new_figure(6.4, 5.6)
    ax = figure.subplots()
    curves = []
    for k, name in enumerate(names):
        is_class = (labels == k).astype(np.int64)
        if is_class.sum() in (0, is_class.size):
            ax.plot([], [], " ", label=f"{name} (absent: no AUC)")
            continue
        fpr, tpr, _ = roc_curve_binary(is_class, probs[:, k])
        curves.append((fpr, tpr))
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC = {auc_trapezoid(fpr, tpr):.3f})")
    fpr, tpr, _ = micro_roc_curve(labels, probs)
    ax.plot(fpr, tpr, "k:", lw=2, label=f"micro-average (AUC = {auc_trapezoid(fpr, tpr):.3f})")
    if curves:
        grid, mean_tpr = _macro_average_curve(curves)
        macro = np.mean([auc_trapezoid(f, t) for f, t in curves])
        ax.plot(grid, mean_tpr, "k--", lw=2, label=f"macro-average (mean AUC = {macro:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, label="chance (AUC = 0.5)")
    ax.set(
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curves (one-vs-rest)",
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def _operating_point(y01: np.ndarray, score: np.ndarray, threshold: float) -> tuple[float, ...]:
    """(FPR, TPR, precision) of the decision ``score > threshold``; precision 0 if none called."""
    called = score > threshold
    true_pos = float(np.sum(called & (y01 == 1)))
    false_pos = float(np.sum(called & (y01 == 0)))
    precision = true_pos / (true_pos + false_pos) if called.any() else 0.0
    return false_pos / float(np.sum(y01 == 0)), true_pos / float(np.sum(y01 == 1)), precision


def plot_lens_roc(
    y_true01: Any, score: Any, path: str | Path, threshold: float | None = None
) -> Path:
    """ROC curve of a two-class (lens finding) score: linear axes, and FPR on a log axis.

    The log panel shows the low false-positive end that lens searches work at; the points at
    FPR = 0 (TPR0) are drawn at its left edge, FPR = 1 / (2 N_non-lens). ``threshold`` marks the
    operating point ``score > threshold`` on both panels.
    """
    fpr, tpr, _ = roc_curve_binary(y_true01, score)
    labels = np.asarray(y_true01).astype(np.int64)
    values = np.asarray(score, dtype=np.float64)
    floor = 0.5 / float(np.sum(labels == 0))
    figure = _new_figure(11.5, 5.0)
    linear, logarithmic = figure.subplots(1, 2)
    area = auc_trapezoid(fpr, tpr)
    linear.plot(fpr, tpr, lw=1.8, label=f"ROC (AUC = {area:.3f})")
    linear.plot([0, 1], [0, 1], color="0.6", lw=1, label="chance (AUC = 0.5)")
    logarithmic.plot(np.maximum(fpr, floor), tpr, lw=1.8, label="ROC")
    chance = np.geomspace(floor, 1.0, 50)
    logarithmic.plot(chance, chance, color="0.6", lw=1, label="chance")
    if threshold is not None:
        point_fpr, point_tpr, _ = _operating_point(labels, values, threshold)
        label = f"threshold {threshold:.4g}: FPR {point_fpr:.3g}, TPR {point_tpr:.3f}"
        linear.plot([point_fpr], [point_tpr], "o", color="C3", label=label)
        logarithmic.plot([max(point_fpr, floor)], [point_tpr], "o", color="C3", label=label)
    linear.set(
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curve",
    )
    linear.set_aspect("equal")
    logarithmic.set_xscale("log")
    logarithmic.set(
        xlim=(floor, 1.0),
        ylim=(-0.01, 1.01),
        xlabel="False positive rate (log; FPR = 0 at the left edge)",
        ylabel="True positive rate",
        title="ROC curve, low false-positive rates",
    )
    for ax in (linear, logarithmic):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def plot_pr(y_true01: Any, score: Any, path: str | Path, threshold: float | None = None) -> Path:
    """Precision-recall curve of a two-class (lens finding) score, with the prevalence baseline;
    ``threshold`` marks the operating point ``score > threshold``."""
    precision, recall, _ = precision_recall_curve_binary(y_true01, score)
    prevalence = float(np.mean(np.asarray(y_true01) == 1))
    figure = _new_figure(6.0, 5.0)
    ax = figure.subplots()
    ax.step(recall, precision, where="post", lw=1.8, label=f"AP = {pr_auc(y_true01, score):.3f}")
    ax.axhline(prevalence, color="0.6", lw=1, ls="--", label=f"chance (= {prevalence:.3f})")
    if threshold is not None:
        labels = np.asarray(y_true01).astype(np.int64)
        _, point_recall, point_precision = _operating_point(
            labels, np.asarray(score, dtype=np.float64), threshold
        )
        ax.plot(
            [point_recall],
            [point_precision],
            "o",
            color="C3",
            label=f"threshold {threshold:.4g}: P {point_precision:.3f}, R {point_recall:.3f}",
        )
    ax.set(
        xlim=(-0.01, 1.01),
        ylim=(-0.01, 1.02),
        xlabel="Recall (true positive rate)",
        ylabel="Precision",
        title="Precision-recall curve",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _save(figure, path)


# ------------------------------------------------------------------------------------ confusion


def _check_confusion(cm: Any, n_names: int) -> np.ndarray:
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {counts.shape}")
    if counts.shape[0] != n_names:
        raise ValueError(
            f"confusion matrix is {counts.shape[0]}x{counts.shape[0]} but got {n_names} class names"
        )
    if not np.issubdtype(counts.dtype, np.number) or np.any(counts < 0):
        raise ValueError("a confusion matrix must hold non-negative counts")
    return counts.astype(np.float64)


def _draw_matrix(
    figure: Figure, ax: Any, values: np.ndarray, names: list[str], fmt: str, title: str, vmax: float
) -> None:
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    for (row, col), value in np.ndenumerate(values):
        colour = "white" if value > 0.55 * vmax else "black"
        ax.text(col, row, format(value, fmt), ha="center", va="center", color=colour)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=30, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="Predicted class", ylabel="True class", title=title)
    figure.colorbar(image, ax=ax, shrink=0.8)


def plot_confusion(cm: Any, class_names: Sequence[str], path: str | Path) -> Path:
    """Confusion matrix as counts and as row-normalised fractions (recall on the diagonal)."""
    names = [str(name) for name in class_names]
    counts = _check_confusion(cm, len(names))
    row_totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    size = 3.2 + 0.7 * len(names)
    figure = _new_figure(2 * size + 0.8, size)
    left, right = figure.subplots(1, 2)
    _draw_matrix(figure, left, counts, names, ".0f", "Counts", max(float(counts.max()), 1.0))
    _draw_matrix(figure, right, fractions, names, ".2f", "Normalised by true class", 1.0)
    return _save(figure, path)


# -------------------------------------------------------------------------------------- history


def _read_history_csv(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"training history {path} does not exist")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"training history {path} has no rows")
    return {name: [row.get(name, "") for row in rows] for name in rows[0]}


def _history_columns(history: Any) -> dict[str, list[Any]]:
    """Columns of a history given as a CSV path, a mapping of columns or a pandas DataFrame."""
    if isinstance(history, (str, Path)):
        return _read_history_csv(Path(history))
    if hasattr(history, "to_dict") and hasattr(history, "columns"):
        return {str(k): list(v) for k, v in history.to_dict("list").items()}
    if isinstance(history, Mapping):
        return {str(k): list(v) for k, v in history.items()}
    raise ValueError(
        f"history must be a CSV path, a mapping of columns or a DataFrame, got "
        f"{type(history).__name__}"
    )


def _to_floats(values: list[Any], column: str) -> np.ndarray:
    out = np.full(len(values), math.nan)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"history column {column!r} row {i} is not a number: {value!r}"
            ) from None
    return out


def _pick(columns: dict[str, list[Any]], role: str) -> np.ndarray | None:
    for name in HISTORY_COLUMNS[role]:
        if name in columns:
            return _to_floats(columns[name], name)
    return None


def plot_training_curves(history: Any, path: str | Path) -> Path:
    """Loss (train/val), accuracy (train/val) and validation macro AUC against epoch.

    ``history`` is a CSV file, a mapping of columns or a DataFrame; column names accepted are
    listed in :data:`HISTORY_COLUMNS`. Panels whose columns are missing say "not recorded";
    empty cells are gaps.
    """
    columns = _history_columns(history)
    curves = {role: _pick(columns, role) for role in HISTORY_COLUMNS}
    if all(curves[role] is None for role in HISTORY_COLUMNS if role != "epoch"):
        known = sorted({name for names in HISTORY_COLUMNS.values() for name in names})
        raise ValueError(
            f"training history has none of the known columns {known}; found {sorted(columns)}"
        )
    n_rows = max(len(v) for v in columns.values())
    epochs = curves["epoch"] if curves["epoch"] is not None else np.arange(1, n_rows + 1)
    panels = (
        ("Loss", "Loss", ("train_loss", "val_loss")),
        ("Accuracy", "Accuracy", ("train_accuracy", "val_accuracy")),
        ("Validation macro AUC", "Macro AUC (one-vs-rest)", ("val_macro_auc",)),
    )
    figure = _new_figure(13.0, 3.8)
    for ax, (title, ylabel, roles) in zip(figure.subplots(1, 3), panels, strict=True):
        drawn = False
        for role in roles:
            values = curves[role]
            if values is None or np.all(np.isnan(values)):
                continue
            label = role.replace("_", " ").replace("val ", "validation ")
            ax.plot(epochs, values, marker="o", ms=3, label=label)
            drawn = True
        if drawn:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set(xlabel="Epoch", ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
    return _save(figure, path)


# -------------------------------------------------------------------------------------- gallery


def _stretch(image: np.ndarray, stretch: str) -> np.ndarray:
    """Map one image (any shape) to [0, 1] with a shared stretch over all its channels."""
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image)
    scaled = (image - low) / (high - low)
    if stretch == "minmax":
        return scaled
    return np.arcsinh(scaled / ASINH_SOFTENING) / np.arcsinh(1.0 / ASINH_SOFTENING)


def display_image(image: Any, stretch: str = "asinh") -> np.ndarray:
    """A ``[C, H, W]`` or ``[H, W]`` image as a displayable [0, 1] array.

    One channel gives ``[H, W]`` (grey map); three or more give an RGB ``[H, W, 3]`` composite of
    channels 0, 1, 2 as red, green, blue; two channels show the first only.
    """
    if stretch not in STRETCHES:
        raise ValueError(f"unknown stretch {stretch!r}; choose one of {', '.join(STRETCHES)}")
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"an image must be [C, H, W] or [H, W], got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("an image holds NaN or infinite pixels; cannot display it")
    if array.shape[0] >= 3:
        return np.moveaxis(_stretch(array[:3], stretch), 0, -1)
    return _stretch(array[0], stretch)


def plot_gallery(
    images: Any,
    titles: Sequence[str],
    path: str | Path,
    ncols: int = 6,
    stretch: str = "asinh",
    suptitle: str | None = None,
) -> Path:
    """A grid of images ``[N, C, H, W]`` (or ``[N, H, W]``), each stretched on its own, titled."""
    stack = np.asarray(images)
    if stack.ndim not in (3, 4) or stack.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [N, C, H, W] or [N, H, W], got {stack.shape}")
    if len(titles) != stack.shape[0]:
        raise ValueError(f"got {len(titles)} titles for {stack.shape[0]} images")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    n_cols = min(ncols, stack.shape[0])
    n_rows = math.ceil(stack.shape[0] / n_cols)
    figure = _new_figure(2.2 * n_cols, 2.5 * n_rows + (0.4 if suptitle else 0.0))
    axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, title in zip(axes, stack, titles, strict=False):
        ax.imshow(display_image(image, stretch), cmap="gray", vmin=0, vmax=1, origin="lower")
        ax.set_title(str(title), fontsize=8)
    if suptitle:
        figure.suptitle(suptitle)
    return _save(figure, path)
