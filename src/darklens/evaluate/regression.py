"""Regression and denoising metrics as pure numpy functions (tested against scikit-learn and
scikit-image).

Regression targets are arrays [N] or [N, T] (T targets); predicted uncertainties σ, when a model
gives them (Gaussian-NLL heads), have the same shape. Coverage is the fraction of examples whose
true value lies within z·σ of the prediction, for the central 68.27 % (z = 1) and 95 % (z = 1.96)
intervals: a calibrated model covers about those fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

COVERAGE_LEVELS = {"68": 1.0, "95": 1.959963984540054}


def _as_2d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"{name} must be shaped [N] or [N, targets] with N >= 1, got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true, pred = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true {true.shape} and y_pred {pred.shape} differ in shape")
    return true, pred


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per target: mean |y_pred − y_true|."""
    true, pred = _check_pair(y_true, y_pred)
    return np.mean(np.abs(pred - true), axis=0)


def root_mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per target: sqrt(mean (y_pred − y_true)²)."""
    true, pred = _check_pair(y_true, y_pred)
    return np.sqrt(np.mean((pred - true) ** 2, axis=0))


def r2_score(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per target: 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (NaN for a constant target, as undefined)."""
    true, pred = _check_pair(y_true, y_pred)
    residual = np.sum((true - pred) ** 2, axis=0)
    total = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.nan)


def bias(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per target: mean (y_pred − y_true)."""
    true, pred = _check_pair(y_true, y_pred)
    return np.mean(pred - true, axis=0)


def coverage(y_true: Any, y_pred: Any, sigma: Any, z: float) -> np.ndarray:
    """Per target: the fraction of examples with |y_true − y_pred| ≤ z·σ."""
    true, pred = _check_pair(y_true, y_pred)
    width = _as_2d(sigma, "sigma")
    if width.shape != true.shape:
        raise ValueError(f"sigma {width.shape} must be shaped like y_true {true.shape}")
    if np.any(width < 0):
        raise ValueError("sigma must be >= 0")
    return np.mean(np.abs(true - pred) <= z * width, axis=0)


def regression_metrics(
    y_true: Any,
    y_pred: Any,
    sigma: Any | None = None,
    target_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The regression report: per target MAE, RMSE, R², bias (and, with σ, the 68 %/95 %
    coverage and the mean σ), keyed by target name."""
    true, pred = _check_pair(y_true, y_pred)
    names = (
        list(target_names) if target_names is not None else [f"y{k}" for k in range(true.shape[1])]
    )
    if len(names) != true.shape[1]:
        raise ValueError(f"{len(names)} target names for {true.shape[1]} targets")
    columns = {
        "mae": mean_absolute_error(true, pred),
        "rmse": root_mean_squared_error(true, pred),
        "r2": r2_score(true, pred),
        "bias": bias(true, pred),
    }
    if sigma is not None:
        for level, z in COVERAGE_LEVELS.items():
            columns[f"coverage_{level}"] = coverage(true, pred, sigma, z)
        columns["mean_sigma"] = np.mean(_as_2d(sigma, "sigma"), axis=0)
    per_target = {
        name: {key: _json_float(values[k]) for key, values in columns.items()}
        for k, name in enumerate(names)
    }
    return {"n_samples": int(true.shape[0]), "targets": per_target}


def psnr(clean: Any, estimate: Any, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of ``estimate`` against ``clean`` over all pixels, with
    ``data_range`` the clean image's max − min unless given (as scikit-image's)."""
    from skimage.metrics import peak_signal_noise_ratio

    truth = np.asarray(clean, dtype=np.float64)
    guess = np.asarray(estimate, dtype=np.float64)
    span = float(truth.max() - truth.min()) if data_range is None else float(data_range)
    with np.errstate(divide="ignore"):  # identical images: infinite PSNR
        return float(peak_signal_noise_ratio(truth, guess, data_range=span))


def ssim(clean: Any, estimate: Any, data_range: float | None = None) -> float:
    """Mean structural similarity of 2-D images [H, W] or stacks [N, H, W] (scikit-image's)."""
    from skimage.metrics import structural_similarity

    truth = np.asarray(clean, dtype=np.float64)
    guess = np.asarray(estimate, dtype=np.float64)
    if truth.shape != guess.shape:
        raise ValueError(f"clean {truth.shape} and estimate {guess.shape} differ in shape")
    truth, guess = truth.reshape(-1, *truth.shape[-2:]), guess.reshape(-1, *guess.shape[-2:])
    span = float(truth.max() - truth.min()) if data_range is None else float(data_range)
    return float(
        np.mean(
            [
                structural_similarity(t, g, data_range=span)
                for t, g in zip(truth, guess, strict=True)
            ]
        )
    )


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
