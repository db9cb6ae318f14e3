"""Figures of regression and denoising evaluations, written straight to PNG files (the Agg
canvas, no pyplot, as :mod:`darklens.evaluate.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from darklens.evaluate.plots import _new_figure, _save


def plot_predicted_vs_true(
    true: np.ndarray,
    pred: np.ndarray,
    sigma: np.ndarray | None,
    names: Sequence[str],
    path: str | Path,
) -> Path:
    """One panel per target: predicted against true value (with ±1σ bars when given) and the
    line of perfect predictions."""
    figure = _new_figure(4.2 * len(names), 4.0)
    axes = np.atleast_1d(figure.subplots(1, len(names)))
    for k, (ax, name) in enumerate(zip(axes, names, strict=True)):
        yerr = None if sigma is None else sigma[:, k]
        ax.errorbar(true[:, k], pred[:, k], yerr=yerr, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
        low = float(min(true[:, k].min(), pred[:, k].min()))
        high = float(max(true[:, k].max(), pred[:, k].max()))
        ax.plot([low, high], [low, high], color="black", lw=1, label="perfect")
        ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}", title=name)
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return _save(figure, path)


def plot_residuals_vs_truth(
    residuals: np.ndarray,
    names: Sequence[str],
    others: Mapping[str, np.ndarray],
    path: str | Path,
) -> Path:
    """A grid: one row per target, one column per other truth column, residual (predicted −
    true) against that column's value."""
    columns = list(others)
    figure = _new_figure(3.2 * max(len(columns), 1), 2.8 * len(names))
    axes = np.asarray(figure.subplots(len(names), max(len(columns), 1), squeeze=False))
    for row, name in enumerate(names):
        if not columns:
            axes[row, 0].text(0.5, 0.5, "no other truth columns", ha="center", va="center")
        for col, other in enumerate(columns):
            ax = axes[row, col]
            ax.scatter(others[other], residuals[:, row], s=6, alpha=0.6)
            ax.axhline(0.0, color="black", lw=1)
            ax.set(xlabel=other, ylabel=f"residual {name}" if col == 0 else None)
            ax.grid(alpha=0.3)
    return _save(figure, path)


def plot_denoising_examples(
    noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, path: str | Path
) -> Path:
    """Rows of (noisy, denoised, clean, residual denoised − clean) for a few images, first
    channel; the three images share the clean image's grey scale."""
    rows = len(noisy)
    figure = _new_figure(10.0, 2.6 * rows)
    axes = np.asarray(figure.subplots(rows, 4, squeeze=False))
    titles = ("noisy", "denoised", "clean", "denoised − clean")
    for i in range(rows):
        low, high = float(clean[i, 0].min()), float(clean[i, 0].max())
        panels = (noisy[i, 0], denoised[i, 0], clean[i, 0], denoised[i, 0] - clean[i, 0])
        for j, (ax, image) in enumerate(zip(axes[i], panels, strict=True)):
            if j < 3:
                ax.imshow(np.clip(image, low, high), cmap="gray", vmin=low, vmax=high)
            else:
                span = float(np.abs(image).max()) or 1.0
                ax.imshow(image, cmap="coolwarm", vmin=-span, vmax=span)
            ax.set_axis_off()
            if i == 0:
                ax.set_title(titles[j])
    return _save(figure, path)
