"""Regression targets from a dataset's truth columns, their scaling, losses and epoch metrics.

A target name is a truth column (``theta_e_arcsec``; the unit suffix may be left out when only
one column has that stem: ``axion_mass`` is ``axion_mass_ev``), ``total_<column>`` (the NaN-aware
sum of a per-subhalo column over its slots, NaN when every slot is NaN) or ``log10_<target>``
(NaN where the value is not > 0). Images whose target is NaN are masked out of training.

:class:`TargetScaling` (names, the training split's mean and standard deviation, the loss) is
stored in every regression checkpoint under ``targets``: the trainer, the evaluation and the
predictor map network outputs to physical values with it. A ``gaussian_nll`` head gives
``2·T`` outputs per image (T means, then T raw log-variances, in standardised units); ``mse`` and
``huber`` heads give T.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LOG10 = "log10_"
TOTAL = "total_"
LOG_VAR_LIMIT = 10.0  # predicted log-variances (standardised units) are soft-bounded to ±this


class TruthSource(Protocol):
    """What target resolution needs of a dataset (a LensDataset or an in-memory one)."""

    truth_columns: list[str]

    def truth(self, name: str) -> np.ndarray: ...


def resolve_truth_column(stem: str, columns: Sequence[str]) -> str:
    """The truth column named ``stem``, or the only one named ``stem_<unit>``; KeyError listing
    the available columns otherwise."""
    if stem in columns:
        return stem
    matches = [c for c in columns if c.startswith(stem + "_") and "_" not in c[len(stem) + 1 :]]
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(sorted(columns)) or "none"
    hint = f" (ambiguous: {', '.join(matches)})" if matches else ""
    raise KeyError(
        f"target {stem!r} is not a truth column of the dataset{hint}; available truth columns: "
        f"{available} (prefix total_ sums a per-subhalo column, log10_ takes the logarithm)"
    )


def target_values(dataset: TruthSource, name: str) -> np.ndarray:
    """One target for every image of ``dataset``, float64 [N] (NaN where undefined)."""
    columns = list(dataset.truth_columns)
    if name.startswith(LOG10):
        base = target_values(dataset, name[len(LOG10) :])
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(base > 0, np.log10(np.where(base > 0, base, 1.0)), np.nan)
    if name.startswith(TOTAL) and name not in columns:
        column = resolve_truth_column(name[len(TOTAL) :], columns)
        values = np.asarray(dataset.truth(column), dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(f"total_ sums a per-slot truth column; {column} is {values.shape}")
        with np.errstate(invalid="ignore"):
            total = np.nansum(values, axis=1)
        return np.where(np.all(np.isnan(values), axis=1), np.nan, total)
    column = resolve_truth_column(name, columns)
    values = np.asarray(dataset.truth(column), dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(
            f"truth column {column} holds {values.shape[1:]} values per image; regress a "
            f"scalar (e.g. total_{column})"
        )
    return values


def target_table(dataset: TruthSource, names: Sequence[str]) -> np.ndarray:
    """The targets ``names`` for every image, float64 [N, T]."""
    return np.stack([target_values(dataset, name) for name in names], axis=1)


@dataclasses.dataclass(frozen=True)
class TargetScaling:
    """How targets map to network outputs: ``(value - mean) / std`` per target; ``loss`` tells
    whether the head also predicts log-variances (``gaussian_nll``)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    loss: str = "gaussian_nll"

    def __post_init__(self) -> None:
        if not self.names or not len(self.names) == len(self.mean) == len(self.std):
            raise ValueError("target scaling needs one mean and std per target name")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"target standard deviations must be finite and > 0, got {self.std}")

    @property
    def n_outputs(self) -> int:
        """Network outputs per image (means, and log-variances for gaussian_nll)."""
        return len(self.names) * (2 if self.has_sigma else 1)

    @property
    def has_sigma(self) -> bool:
        return self.loss == "gaussian_nll"

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Physical [N, T] → standardised."""
        return (values - np.asarray(self.mean)) / np.asarray(self.std)

    def to_physical(self, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Network outputs [N, n_outputs] → physical means [N, T] and σ [N, T] (None without a
        variance head)."""
        outputs = np.asarray(outputs, dtype=np.float64)
        n = len(self.names)
        mean = outputs[:, :n] * np.asarray(self.std) + np.asarray(self.mean)
        if not self.has_sigma:
            return mean, None
        log_var = LOG_VAR_LIMIT * np.tanh(outputs[:, n:] / LOG_VAR_LIMIT)
        return mean, np.exp(0.5 * log_var) * np.asarray(self.std)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "mean": list(self.mean),
            "std": list(self.std),
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetScaling:
        try:
            return cls(
                tuple(str(n) for n in data["names"]),
                tuple(float(v) for v in data["mean"]),
                tuple(float(v) for v in data["std"]),
                str(data.get("loss", "gaussian_nll")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"checkpoint holds malformed regression targets: {err}") from None


def fit_scaling(
    train_values: np.ndarray, names: Sequence[str], standardize: bool, loss: str
) -> TargetScaling:
    """The scaling of the training targets [N, T] (no NaN): their mean and std, or 0 and 1."""
    count = len(names)
    if not standardize:
        return TargetScaling(tuple(names), (0.0,) * count, (1.0,) * count, loss)
    std = train_values.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant target is only shifted
    return TargetScaling(
        tuple(names),
        tuple(float(v) for v in train_values.mean(axis=0)),
        tuple(float(v) for v in std),
        loss,
    )


def split_outputs(outputs: torch.Tensor, n_targets: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means and log-variances of a Gaussian head's outputs [B, 2T]; the log-variances are
    soft-bounded (``L·tanh(raw / L)``), so their gradient never vanishes as a clamp's would."""
    raw = outputs[:, n_targets:]
    return outputs[:, :n_targets], LOG_VAR_LIMIT * torch.tanh(raw / LOG_VAR_LIMIT)


class RegressionLoss(nn.Module):
    """Gaussian negative log-likelihood (torch's, with the constant ½·log 2π left out), mean
    squared error or Huber loss between outputs and standardised targets, in float32."""

    def __init__(self, loss: str, n_targets: int) -> None:
        super().__init__()
        self.loss, self.n_targets = loss, n_targets

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs, targets = outputs.float(), targets.float()
        if self.loss == "gaussian_nll":
            mean, log_var = split_outputs(outputs, self.n_targets)
            return F.gaussian_nll_loss(mean, targets, log_var.exp(), eps=1e-12)
        if self.loss == "huber":
            return F.huber_loss(outputs, targets)
        return F.mse_loss(outputs, targets)


def regression_epoch_metrics(
    outputs: torch.Tensor, targets: torch.Tensor, scaling: TargetScaling
) -> dict[str, float]:
    """Validation metrics of a regression epoch: ``loss`` (the training loss), ``rmse`` and
    ``mae`` (physical units, averaged over targets), ``r2`` (averaged over targets)."""
    from darklens.evaluate.regression import mean_absolute_error, r2_score, root_mean_squared_error

    if not bool(torch.isfinite(outputs).all()):
        raise ValueError(
            "training diverged: the model gives non-finite outputs on the validation split; "
            "lower lr or set grad_clip_norm"
        )
    loss = float(RegressionLoss(scaling.loss, len(scaling.names))(outputs, targets))
    scale, shift = np.asarray(scaling.std), np.asarray(scaling.mean)
    true = targets.double().cpu().numpy() * scale + shift
    pred, _ = scaling.to_physical(outputs.double().cpu().numpy())
    r2 = r2_score(true, pred) if len(true) > 1 else np.array([math.nan])
    return {
        "loss": loss,
        "rmse": float(np.mean(root_mean_squared_error(true, pred))),
        "mae": float(np.mean(mean_absolute_error(true, pred))),
        "r2": float(np.nanmean(r2)) if np.any(np.isfinite(r2)) else math.nan,
    }
