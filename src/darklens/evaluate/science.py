"""What a science user needs beside the headline metrics: bootstrap intervals, warnings about
what a test set cannot tell, and metrics against the simulation's truth (numpy only).

- :func:`bootstrap_intervals`: stratified percentile bootstrap (each true class resampled with
  replacement at its own size, so class counts and the number of non-lenses stay fixed) of
  accuracy, the AUCs and, for two classes, TPR0, TPR10 and the TPR at the false-positive rates
  of :data:`~darklens.evaluate.metrics.LENS_FINDING_FPRS`. Every resample is scored with the
  counts as weights on one sort of the scores, so 1,000 resamples of 20,000 images take seconds.
- :func:`evaluation_warnings`: tiny test sets or classes, a constant classifier, TPRs a test set
  is too small to measure.
- :func:`metrics_vs_truth`: per bin of a truth column (θ_E, arc S/N, source magnitude, axion
  mass, ...) the AUC of that bin's members of a class against the reference class, and for two
  classes the completeness (TPR) at the decision threshold, with 95 % Wilson intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from darklens.evaluate.metrics import (
    ARGMAX_THRESHOLD,
    CHALLENGE_TPRS,
    LENS_FINDING_FPRS,
    check_class_names,
    check_multiclass,
    classification_metrics,
    fpr_key,
    two_class_predictions,
)

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
# Below these sizes a test set's metrics are too uncertain to rank recipes by.
SMALL_TEST_SET = 200
SMALL_CLASS = 30
TRUTH_BINS = 5
_RESAMPLES_PER_PASS = 32
_WILSON_Z = 1.959963984540054


# -- weighted scores on one sort -------------------------------------------------------------------
@dataclass(frozen=True)
class _Ranked:
    """One score column sorted once (highest first) with its tie groups: the index of the
    last member of each group of equal scores."""

    order: np.ndarray
    positive: np.ndarray  # [n] bool, in sorted order
    group_ends: np.ndarray

    @classmethod
    def of(cls, positive: np.ndarray, score: np.ndarray) -> _Ranked:
        order = np.argsort(-score, kind="stable")
        ranked = score[order]
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
        return cls(order, positive[order], ends)

    def counts(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative weighted (TP, FP) at each distinct threshold, [B, groups]."""
        w = weights[:, self.order]
        tp = np.cumsum(w * self.positive, axis=1)[:, self.group_ends]
        fp = np.cumsum(w * ~self.positive, axis=1)[:, self.group_ends]
        return tp, fp

    def auc(self, weights: np.ndarray) -> np.ndarray:
        tp, fp = self.counts(weights)
        tpr = np.concatenate([np.zeros((tp.shape[0], 1)), tp / tp[:, -1:]], axis=1)
        fpr = np.concatenate([np.zeros((fp.shape[0], 1)), fp / fp[:, -1:]], axis=1)
        return np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)


def _tpr_with_at_most(tp: np.ndarray, fp: np.ndarray, allowed: int) -> np.ndarray:
    """Highest TPR over thresholds with at most ``allowed`` false positives, per resample."""
    kept = np.where(fp <= allowed + 1e-9, tp, 0.0)
    return kept.max(axis=1) / tp[:, -1]


def _stratified_weights(labels: np.ndarray, n_resamples: int, rng) -> np.ndarray:
    """[B, n] resample counts: every class resampled with replacement at its own size."""
    weights = np.zeros((n_resamples, labels.size))
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        weights[:, members] = rng.multinomial(
            members.size, np.full(members.size, 1.0 / members.size), size=n_resamples
        )
    return weights


def _resampled_scores(
    labels: np.ndarray, probs: np.ndarray, correct: np.ndarray, weights: np.ndarray, ranked
) -> dict[str, np.ndarray]:
    total = weights.sum(axis=1)
    scores = {"accuracy": (weights * correct).sum(axis=1) / total}
    aucs = {k: r.auc(weights) for k, r in ranked.items()}
    for k, values in aucs.items():
        scores[f"auc[{k}]"] = values
    if probs.shape[1] == 2:
        lens = ranked[1]
        tp, fp = lens.counts(weights)
        scores["auc"] = aucs[1]
        for n in CHALLENGE_TPRS:
            scores[f"tpr{n}"] = _tpr_with_at_most(tp, fp, max(n - 1, 0))
        n_negative = int(np.sum(labels == 0))
        for rate in LENS_FINDING_FPRS:
            allowed = int(math.floor(rate * n_negative + 1e-9))
            scores[fpr_key(rate)] = _tpr_with_at_most(tp, fp, allowed)
    else:
        scores["macro_auc"] = np.nanmean(np.stack(list(aucs.values())), axis=0)
    return scores


def bootstrap_intervals(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    *,
    threshold: float | None = None,
    n_resamples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    level: float = CONFIDENCE,
) -> dict[str, Any]:
    """Percentile intervals of the stratified bootstrap (module docstring), as
    ``{"level", "n_resamples", "seed", "intervals": {metric: [low, high]}}``; per-class AUCs are
    keyed ``auc_per_class`` by class name. Accuracy uses the argmax, or for two classes
    ``proba[:, 1] > threshold`` when given (as :func:`classification_metrics`)."""
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    if n_resamples < 10 or not 0.5 < level < 1:
        raise ValueError(
            f"need n_resamples >= 10 and level in (0.5, 1), got {n_resamples}, {level}"
        )
    correct = two_class_predictions(probs, threshold) == labels
    present = [k for k in range(probs.shape[1]) if 0 < np.sum(labels == k) < labels.size]
    ranked = {k: _Ranked.of(labels == k, probs[:, k].astype(np.float64)) for k in present}
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_resamples, _RESAMPLES_PER_PASS):
        count = min(_RESAMPLES_PER_PASS, n_resamples - start)
        weights = _stratified_weights(labels, count, rng)
        for name, values in _resampled_scores(labels, probs, correct, weights, ranked).items():
            parts.setdefault(name, []).append(values)
    tail = (1.0 - level) / 2.0 * 100.0
    intervals: dict[str, Any] = {}
    per_class: dict[str, list[float]] = {}
    for name, chunks in parts.items():
        low, high = np.percentile(np.concatenate(chunks), [tail, 100.0 - tail])
        pair = [float(low), float(high)]
        if name.startswith("auc["):
            per_class[names[int(name[4:-1])]] = pair
        else:
            intervals[name] = pair
    intervals["auc_per_class"] = per_class
    return {"level": level, "n_resamples": n_resamples, "seed": seed, "intervals": intervals}


# -- warnings -------------------------------------------------------------------------------------
def evaluation_warnings(y_true: Any, proba: Any, class_names: Sequence[str]) -> list[str]:
    """Plain-language warnings about what this test set and these scores cannot show."""
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    found = []
    if labels.size < SMALL_TEST_SET:
        found.append(
            f"only {labels.size} test images: every metric is uncertain (see the bootstrap "
            f"intervals); use at least {SMALL_TEST_SET}, better thousands, to compare models"
        )
    for k, name in enumerate(names):
        count = int(np.sum(labels == k))
        if 0 < count < SMALL_CLASS:
            found.append(f"class {name!r} has only {count} test images: its scores are noisy")
    if np.all(np.ptp(probs, axis=0) < 1e-9):
        found.append(
            "every image got the same probabilities: a constant classifier (AUC 0.5 and "
            "accuracy = the majority share by construction; check the training)"
        )
    if probs.shape[1] == 2:
        found += _lens_finding_warnings(int(np.sum(labels == 0)), names)
    return found


def _lens_finding_warnings(n_negative: int, names: list[str]) -> list[str]:
    found = []
    if n_negative < 10:
        found.append(
            f"only {n_negative} {names[0]} images: TPR10 (before the tenth false positive) "
            "cannot be reached"
        )
    for rate in LENS_FINDING_FPRS:
        if rate * n_negative < 1:
            found.append(
                f"TPR at FPR {rate:.0e} allows no false positive among {n_negative} {names[0]} "
                f"images (it equals TPR0); {math.ceil(1 / rate):,} are needed to measure it"
            )
    found.append(
        f"TPR0 and TPR10 count false positives among these {n_negative:,} {names[0]} images; "
        "the Bologna challenge counted them among 50,000–60,000"
    )
    return found


# -- metrics against the truth ---------------------------------------------------------------------
@dataclass(frozen=True)
class TruthSpec:
    """A truth column to bin, the class whose members carry it, the axis scale and a label."""

    column: str
    class_name: str
    label: str
    log: bool = False


def _bin_edges(values: np.ndarray, n_bins: int, log: bool) -> np.ndarray:
    """Quantile edges (equal counts), unique; in log space when ``log``."""
    data = np.log10(values) if log else values
    edges = np.unique(np.quantile(data, np.linspace(0.0, 1.0, n_bins + 1)))
    return 10.0**edges if log else edges


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion (Wilson 1927)."""
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    z2 = _WILSON_Z**2
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = _WILSON_Z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def _bin_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """P(positive > negative) + ½ P(tie), from mid-ranks (Mann–Whitney)."""
    ranks = rankdata(np.concatenate([positive_scores, negative_scores]), method="average")
    n_pos = positive_scores.size
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * negative_scores.size))


def metrics_vs_truth(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    truth: Mapping[str, np.ndarray],
    specs: Sequence[TruthSpec],
    *,
    threshold: float | None = None,
    n_bins: int = TRUTH_BINS,
) -> dict[str, Any]:
    """Per spec whose column is in ``truth``: equal-count bins of the class's members, with
    each bin's count, AUC against the first class (the images without lensing or
    substructure), and for two classes the completeness at ``threshold`` (0.5 if None) with its
    Wilson interval."""
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    cut = ARGMAX_THRESHOLD if threshold is None else threshold
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.column not in truth or spec.class_name not in names[1:]:
            continue
        k = names.index(spec.class_name)
        values = np.asarray(truth[spec.column], dtype=np.float64)
        if values.ndim != 1 or values.shape[0] != labels.shape[0]:
            raise ValueError(f"truth column {spec.column!r} must hold one value per image")
        members = (labels == k) & np.isfinite(values)
        if spec.log:
            members &= values > 0
        reference = probs[labels == 0, k]
        if members.sum() < n_bins or reference.size == 0:
            continue
        edges = _bin_edges(values[members], n_bins, spec.log)
        rows = []
        for lo, hi, last in zip(edges[:-1], edges[1:], range(len(edges) - 1), strict=True):
            inside = members & (values >= lo) & ((values < hi) | (last == len(edges) - 2))
            scores = probs[inside, k]
            row = {"low": float(lo), "high": float(hi), "n": int(inside.sum())}
            row["auc"] = _bin_auc(scores, reference) if scores.size else None
            if probs.shape[1] == 2:
                found = int(np.sum(scores > cut))
                row["completeness"] = found / scores.size if scores.size else None
                row["completeness_interval"] = list(wilson_interval(found, int(scores.size)))
            rows.append(row)
        out[spec.column] = {
            "class": spec.class_name,
            "label": spec.label,
            "log": spec.log,
            "threshold": cut if probs.shape[1] == 2 else None,
            "bins": rows,
        }
    return out


# -- lenses below the lens definition ------------------------------------------------------------
def undetectable_summary(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    undetectable: np.ndarray,
    threshold: float | None = None,
) -> dict[str, Any] | None:
    """Non-lenses that are lens systems below the lens definition (simulated look-alike
    ``undetectable_lens``), reported apart: how many, their lens scores, how many the decision
    calls lenses, and the headline metrics without them. None when there are none."""
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    mask = np.asarray(undetectable, dtype=bool)
    if probs.shape[1] != 2 or mask.shape != labels.shape or not mask.any():
        return None
    if np.any(labels[mask] != 0):
        raise ValueError("undetectable lenses must be labelled as the first class (non-lens)")
    cut = ARGMAX_THRESHOLD if threshold is None else threshold
    scores = probs[mask, 1]
    kept = ~mask
    summary: dict[str, Any] = {
        "n": int(mask.sum()),
        "score_quantiles": dict(
            zip(("p05", "p50", "p95"), np.quantile(scores, [0.05, 0.5, 0.95]).tolist(), strict=True)
        ),
        "share_called_lens": float(np.mean(scores > cut)),
        "threshold": cut,
    }
    if len(np.unique(labels[kept])) == 2:
        rest = classification_metrics(labels[kept], probs[kept], names, threshold=threshold)
        keys = ("auc_per_class", "tpr0", "tpr10", *(fpr_key(r) for r in LENS_FINDING_FPRS))
        summary["without_them"] = {
            key: rest[key][names[1]] if key == "auc_per_class" else rest[key] for key in keys
        }
    return summary


def add_science_metrics(
    metrics: dict[str, Any],
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    *,
    threshold: float | None = None,
    truth: Mapping[str, np.ndarray] | None = None,
    truth_specs: Sequence[TruthSpec] = (),
    undetectable: np.ndarray | None = None,
    n_resamples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Add ``uncertainty`` (:func:`bootstrap_intervals`), ``warnings``, and when given
    ``vs_truth`` (:func:`metrics_vs_truth`) and ``undetectable_lenses``
    (:func:`undetectable_summary`) to ``metrics`` (in place; returned)."""
    metrics["uncertainty"] = bootstrap_intervals(
        y_true, proba, class_names, threshold=threshold, n_resamples=n_resamples, seed=seed
    )
    metrics["warnings"] = evaluation_warnings(y_true, proba, class_names)
    if truth is not None and truth_specs:
        found = metrics_vs_truth(
            y_true, proba, class_names, truth, truth_specs, threshold=threshold
        )
        if found:
            metrics["vs_truth"] = found
    if undetectable is not None:
        summary = undetectable_summary(y_true, proba, class_names, undetectable, threshold)
        if summary is not None:
            metrics["undetectable_lenses"] = summary
    return metrics
