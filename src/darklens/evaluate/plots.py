"""Evaluation figures written straight to PNG files.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: nothing global changes (no backend switch, no open-figure registry), so these functions
are safe in scripts, tests and worker processes. Each takes its data and an output path and returns
the path it wrote.
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from darklens.data.composite import colour_composite
from darklens.evaluate.metrics import (
    _check_labels,
    _check_predictions,
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


def _legend_below(ax: Any, fontsize: str = "small", ncols: int = 1) -> None:
    """The axes' legend under its plot area (the layout makes room), where it hides no curve."""
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        fontsize=fontsize,
        ncols=ncols,
        frameon=False,
    )


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
    _legend_below(ax)
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
        _legend_below(ax)
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
    _legend_below(ax)
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
            _legend_below(ax, ncols=2)
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


def gallery_image(image: Any, zero_points: Sequence[float] | None = None) -> np.ndarray:
    """How the report shows one cutout: a Lupton colour composite (the reddest three bands as
    R, G, B on a common flux scale, as ``darklens show``) for two bands or more, else the
    single band asinh-stretched."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] >= 2:
        if not np.all(np.isfinite(array)):
            raise ValueError("an image holds NaN or infinite pixels; cannot display it")
        return colour_composite(array, zero_points)
    return display_image(array)


def _scale_bar(ax: Any, width_px: int, pixel_scale_arcsec: float) -> None:
    """A white bar of a round number of arcsec (about a quarter of the image) at bottom left."""
    width = width_px * pixel_scale_arcsec
    nice = [v for v in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0) if v <= width / 3]
    length = nice[-1] if nice else width / 4
    x0, y0 = 0.07 * width_px, 0.08 * width_px
    ax.plot([x0, x0 + length / pixel_scale_arcsec], [y0, y0], color="white", lw=2.2)
    ax.text(
        x0 + 0.5 * length / pixel_scale_arcsec,
        y0 + 0.04 * width_px,
        f"{length:g}″",
        color="white",
        ha="center",
        va="bottom",
        fontsize=7,
    )


def plot_gallery(
    images: Any,
    titles: Sequence[str],
    path: str | Path,
    ncols: int = 6,
    stretch: str = "asinh",
    suptitle: str | None = None,
    zero_points: Sequence[float] | None = None,
    pixel_scale_arcsec: float | None = None,
) -> Path:
    """A grid of images ``[N, C, H, W]`` (or ``[N, H, W]``), each stretched on its own, titled.

    Multi-band images are colour composites (:func:`gallery_image`, with the bands'
    ``zero_points`` when known); ``pixel_scale_arcsec`` adds an arcsec scale bar to each.
    """
    stack = np.asarray(images)
    if stack.ndim not in (3, 4) or stack.shape[0] == 0:
        raise ValueError(f"images must be a non-empty [N, C, H, W] or [N, H, W], got {stack.shape}")
    if len(titles) != stack.shape[0]:
        raise ValueError(f"got {len(titles)} titles for {stack.shape[0]} images")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    if pixel_scale_arcsec is not None and not pixel_scale_arcsec > 0:
        raise ValueError(f"pixel_scale_arcsec must be positive, got {pixel_scale_arcsec}")
    n_cols = min(ncols, stack.shape[0])
    n_rows = math.ceil(stack.shape[0] / n_cols)
    figure = _new_figure(2.2 * n_cols, 2.5 * n_rows + (0.4 if suptitle else 0.0))
    axes = np.atleast_1d(figure.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, image, title in zip(axes, stack, titles, strict=False):
        if stack.ndim == 4 and image.shape[0] >= 2:
            shown = gallery_image(image, zero_points)
        else:
            shown = display_image(image, stretch)
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, origin="lower")
        if pixel_scale_arcsec is not None:
            _scale_bar(ax, image.shape[-1], pixel_scale_arcsec)
        ax.set_title(str(title), fontsize=8)
    if suptitle:
        figure.suptitle(suptitle)
    return _save(figure, path)


# ------------------------------------------------------------------------ metrics vs the truth


def plot_metrics_vs_truth(vs_truth: Mapping[str, Any], path: str | Path) -> Path:
    """One panel per truth column (:func:`darklens.evaluate.science.metrics_vs_truth`): each
    bin's AUC against the reference class and, for two classes, the completeness at the
    decision threshold with its 95 % Wilson interval; horizontal bars span the bins."""
    if not vs_truth:
        raise ValueError("no truth columns to plot")
    columns = list(vs_truth.items())
    figure = _new_figure(4.2 * len(columns), 3.9)
    axes = np.atleast_1d(figure.subplots(1, len(columns), squeeze=False)).ravel()
    for ax, (_, entry) in zip(axes, columns, strict=True):
        rows = entry["bins"]
        low = np.array([r["low"] for r in rows])
        high = np.array([r["high"] for r in rows])
        centre = np.sqrt(low * high) if entry["log"] else (low + high) / 2
        xerr = np.vstack([centre - low, high - centre])
        auc = np.array([np.nan if r["auc"] is None else r["auc"] for r in rows])
        ax.errorbar(centre, auc, xerr=xerr, fmt="s", ms=4, color="0.3", capsize=0,
                    label=f"AUC of these {entry['class']} vs the first class")  # fmt: skip
        if "completeness" in rows[0]:
            value = np.array([np.nan if r["completeness"] is None else r["completeness"]
                              for r in rows])  # fmt: skip
            bounds = np.array([r["completeness_interval"] for r in rows], dtype=np.float64)
            yerr = np.clip(np.vstack([value - bounds[:, 0], bounds[:, 1] - value]), 0.0, None)
            label = f"completeness at score > {entry['threshold']:.3g}"
            ax.errorbar(centre, value, xerr=xerr, yerr=yerr, fmt="o", ms=5, color="C3",
                        capsize=2, label=label)  # fmt: skip
        if entry["log"]:
            ax.set_xscale("log")
        counts = ", ".join(str(r["n"]) for r in rows)
        ax.set(ylim=(-0.02, 1.02), xlabel=entry["label"], title=f"per bin n = {counts}")
        ax.grid(alpha=0.3)
        _legend_below(ax, fontsize="x-small")
    return _save(figure, path)


# --------------------------------------------------------------------------------- light curves

# Median and central 68 % of a class's fluxes (the ±1 sigma range if they were Gaussian).
LIGHT_CURVE_QUANTILES = (0.16, 0.5, 0.84)

# Survey bands in the colour-blind-safe palette of Okabe & Ito (2008, "Color Universal Design",
# popularised by B. Wong, Nature Methods 8, 441, 2011), ordered roughly blue to red.
BAND_COLOURS: dict[str, str] = {
    "u": "#0072B2",
    "g": "#009E73",
    "r": "#D55E00",
    "i": "#E69F00",
    "z": "#000000",
    "y": "#CC79A7",
}
SPARE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
# Line styles telling apart the misclassified examples drawn in one panel (also their maximum).
EXAMPLE_STYLES = ("-", "--", ":")


def check_light_curves(curves: Any, n_samples: int | None = None) -> np.ndarray:
    """Light curves ``[N, T, bands]`` as float64; NaN (missing flux) is allowed, infinity is not."""
    array = np.asarray(curves)
    if array.ndim != 3:
        raise ValueError(f"light curves must be [N, epochs, bands], got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"light curves must hold real fluxes, got dtype {array.dtype}")
    if min(array.shape) == 0:
        raise ValueError(f"light curves need at least one curve, epoch and band, got {array.shape}")
    if n_samples is not None and array.shape[0] != n_samples:
        raise ValueError(f"got {array.shape[0]} light curves for {n_samples} labels")
    values = array.astype(np.float64)
    if np.isinf(values).any():
        raise ValueError("light curves hold infinite fluxes; mark missing fluxes with NaN instead")
    return values


def class_light_curve_quantiles(
    curves: Any,
    y_true: Any,
    n_classes: int,
    quantiles: Sequence[float] = LIGHT_CURVE_QUANTILES,
) -> np.ndarray:
    """Quantiles of each class's flux at every epoch and band, ignoring NaN fluxes.

    Returns ``[n_classes, len(quantiles), T, bands]``: entry ``[k, q, t, b]`` is quantile ``q``
    (numpy's default linear interpolation) of the finite fluxes of class ``k`` at epoch ``t`` in
    band ``b``, NaN where the class has none (absent class or all fluxes missing).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    labels = _check_labels(y_true, "y_true", int(n_classes))
    values = check_light_curves(curves, labels.shape[0])
    levels = np.asarray(quantiles, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0 or np.any((levels < 0) | (levels > 1)):
        raise ValueError(f"quantiles must be a non-empty list of values in [0, 1], got {quantiles}")
    out = np.full((int(n_classes), levels.size, *values.shape[1:]), np.nan)
    for k in range(int(n_classes)):
        members = values[labels == k]
        if members.shape[0] == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
            out[k] = np.nanquantile(members, levels, axis=0)
    return out


def band_colours(band_names: Sequence[str]) -> list[str]:
    """A colour per band: the fixed colour of a survey band (u g r i z y), else a spare one
    (distinct while the palette lasts, then repeating)."""
    known = [BAND_COLOURS.get(str(name).lower()) for name in band_names]
    spares = itertools.cycle([c for c in SPARE_COLOURS if c not in known] or SPARE_COLOURS)
    return [colour or next(spares) for colour in known]


def _band_labels(band_names: Sequence[str] | None, n_bands: int) -> list[str]:
    if band_names is None:
        return [f"band {b}" for b in range(n_bands)]
    names = [str(name) for name in band_names]
    if len(names) != n_bands:
        raise ValueError(f"got {len(names)} band names {names} for {n_bands} bands")
    return names


def _epoch_axis(epochs_days: Any, n_epochs: int) -> tuple[np.ndarray, str]:
    """x values and axis label: epoch indices, or the given epoch times in days."""
    if epochs_days is None:
        return np.arange(n_epochs, dtype=np.float64), "Epoch"
    days = np.asarray(epochs_days, dtype=np.float64)
    if days.shape != (n_epochs,):
        raise ValueError(f"epochs_days must have one time per epoch ({n_epochs}), got {days.shape}")
    if not np.all(np.isfinite(days)) or np.any(np.diff(days) <= 0):
        raise ValueError("epochs_days must be finite and strictly increasing")
    return days, "Time (days)"


def _evenly_spaced(members: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` members spread evenly over the list (first and last included): a fixed pick."""
    if n == 0 or members.size == 0:
        return members[:0]
    positions = np.unique(np.round(np.linspace(0, members.size - 1, min(n, members.size))))
    return members[positions.astype(np.int64)]


def _most_confident_wrong(
    members: np.ndarray, predicted: np.ndarray, probs: np.ndarray, true_class: int, n: int
) -> np.ndarray:
    """Members of ``true_class`` predicted otherwise, highest predicted-class probability first."""
    wrong = members[predicted[members] != true_class]
    confidence = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def _draw_class_overview(
    ax: Any,
    x: np.ndarray,
    values: np.ndarray,
    examples: np.ndarray,
    stats: np.ndarray,
    colours: list[str],
) -> None:
    """Median line and 16-84 % band per band for one class, with thin example curves."""
    low, median, high = stats
    for b, colour in enumerate(colours):
        ax.fill_between(x, low[:, b], high[:, b], color=colour, alpha=0.18, lw=0)
        for i in examples:
            ax.plot(x, values[i, :, b], color=colour, lw=0.6, alpha=0.55)
        ax.plot(x, median[:, b], color=colour, lw=2.0)


def _draw_wrong_examples(
    ax: Any,
    x: np.ndarray,
    values: np.ndarray,
    chosen: np.ndarray,
    median: np.ndarray,
    colours: list[str],
    captions: list[str],
) -> None:
    """The class median (faint) and each chosen example in its own line style, legend-named."""
    for b, colour in enumerate(colours):
        ax.plot(x, median[:, b], color=colour, lw=1.0, alpha=0.35)
    for i, style, caption in zip(chosen, EXAMPLE_STYLES, captions, strict=False):
        for b, colour in enumerate(colours):
            ax.plot(x, values[i, :, b], color=colour, lw=1.2, ls=style)
        ax.plot([], [], color="0.2", lw=1.2, ls=style, label=caption)
    _legend_below(ax, fontsize="x-small")


def _show_empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def plot_light_curves(
    curves: Any,
    y_true: Any,
    class_names: Sequence[str],
    path: str | Path,
    *,
    band_names: Sequence[str] | None = None,
    proba: Any = None,
    y_pred: Any = None,
    epochs_days: Any = None,
    sample_ids: Sequence[Any] | None = None,
    n_examples: int = 5,
    ncols: int = 4,
    flux_label: str = "Flux",
) -> Path:
    """Light curves ``[N, T, bands]`` per true class: one panel per class, grid of ``ncols``.

    Each panel draws, per band, the class median flux at every epoch (thick line), the 16-84 %
    range of the class (shaded; :func:`class_light_curve_quantiles`, NaN fluxes ignored) and
    ``n_examples`` members spread evenly over the class (thin lines). With ``proba`` a second row
    under each class shows its most confidently misclassified members (at most three, one line
    style each, named by ``sample_ids``, predicted class and its probability) over the faint
    class median; ``y_pred`` replaces the argmax decisions (e.g. thresholded two-class scores).
    The x axis is the epoch index, or ``epochs_days`` (one time per epoch, increasing).
    """
    names = [str(name) for name in class_names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"class names must be non-empty and unique, got {names}")
    labels = _check_labels(y_true, "y_true", len(names))
    values = check_light_curves(curves, labels.shape[0])
    n_epochs, n_bands = values.shape[1:]
    bands = _band_labels(band_names, n_bands)
    colours = band_colours(bands)
    x, xlabel = _epoch_axis(epochs_days, n_epochs)
    for name, value, low in (("n_examples", n_examples, 0), ("ncols", ncols, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    ids = [f"#{i}" for i in range(labels.shape[0])] if sample_ids is None else list(sample_ids)
    if len(ids) != labels.shape[0]:
        raise ValueError(f"got {len(ids)} sample_ids for {labels.shape[0]} light curves")
    probs = predicted = None
    if proba is not None:
        columns = np.shape(proba)[1:]
        if columns != (len(names),):
            raise ValueError(f"proba must be [N, {len(names)}] for class names {names}")
        labels, probs = check_multiclass(labels, proba)
        if y_pred is None:
            predicted = np.argmax(probs, axis=1)
        else:
            labels, predicted = _check_predictions(labels, y_pred, len(names))
    elif y_pred is not None:
        raise ValueError("y_pred needs proba too: the wrong examples are ranked by probability")

    stats = class_light_curve_quantiles(values, labels, len(names))
    rows_per_class = 1 if probs is None else 2
    n_cols = min(ncols, len(names))
    n_rows = math.ceil(len(names) / n_cols) * rows_per_class
    figure = _new_figure(3.7 * n_cols, 2.9 * n_rows + 0.9)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, name in enumerate(names):
        row, col = divmod(k, n_cols)
        overview = axes[row * rows_per_class, col]
        members = np.flatnonzero(labels == k)
        title = f"{name} (N = {members.size})"
        if predicted is not None and members.size:
            title += f", {100 * np.mean(predicted[members] == k):.0f} % right"
        panels = [(overview, title)]
        if np.isnan(stats[k]).all():
            _show_empty(overview, "no samples" if members.size == 0 else "no finite fluxes")
        else:
            examples = _evenly_spaced(members, n_examples)
            _draw_class_overview(overview, x, values, examples, stats[k], colours)
        if probs is not None:
            wrong_ax = axes[row * rows_per_class + 1, col]
            wrong_ax.sharex(overview)
            wrong_ax.sharey(overview)
            panels.append((wrong_ax, f"{name}: most confident wrong"))
            chosen = _most_confident_wrong(
                members, predicted, probs, k, min(n_examples, len(EXAMPLE_STYLES))
            )
            if chosen.size == 0:
                _show_empty(wrong_ax, "no misclassified examples")
            else:
                captions = [
                    f"{ids[i]} → {names[predicted[i]]} (p = {probs[i, predicted[i]]:.2f})"
                    for i in chosen
                ]
                _draw_wrong_examples(wrong_ax, x, values, chosen, stats[k][1], colours, captions)
        for ax, panel_title in panels:
            ax.set_axis_on()
            ax.set_title(panel_title, fontsize="medium")
            ax.set(xlabel=xlabel, ylabel=flux_label)
            ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], color=colour, lw=2, label=band)
        for band, colour in zip(bands, colours, strict=True)
    ]
    handles += [
        Patch(color="0.5", alpha=0.3, label="16-84 % of class"),
        Line2D([], [], color="0.5", lw=0.6, label="examples"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="small")
    figure.suptitle("Light curves per true class: median, 16-84 % range and examples")
    return _save(figure, path)
