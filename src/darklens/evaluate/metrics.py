"""Classification and lens-finding metrics on numpy arrays, written from the definitions.

Every public function runs in three steps: *check* the inputs (shapes, finite values, labels in
range, probability rows summing to one) and raise a ``ValueError`` that says what is wrong,
*format* them into plain float64/int64 arrays, then *compute*. The results agree with
scikit-learn (used as the reference in the tests, never here):

* ROC curves keep every distinct threshold (``drop_intermediate=False``); tied scores form one
  threshold, so a tie between a positive and a negative is one diagonal step of the curve.
* One-vs-rest AUCs score class ``k`` against the rest with ``proba[:, k]``. A class with no
  samples in ``y_true`` (or with every sample in it) has no defined AUC: it gets ``NaN`` and is
  left out of the macro averages. Micro AUC pools every (sample, class) pair, including the
  columns of absent classes, which then contribute negatives only.
* Precision, recall and F1 are 0 where their denominators are 0 (scikit-learn's default). Macro
  averages run over all ``n_classes`` classes, weighted averages weight by support.
* Lens finding: ``tpr_at_fp(y, s, n)`` is the highest true-positive rate over thresholds that
  admit at most ``n`` false positives. The Bologna lens challenge (Metcalf et al. 2019, A&A 625,
  A119, Sect. 5) defines TPR0 as "the highest TPR reached, as a function of p threshold, before a
  single false positive occurs" and TPR10 as "the TPR at the point where less than ten false
  positives are made": :func:`challenge_tpr` ``(y, s, n)`` is that TPR_n, i.e. at most ``n − 1``
  false positives for n ≥ 1 and none for n = 0. A lens tied with a non-lens at the cut counts
  only together with that false positive, i.e. ties go against the lens.
  :func:`tpr_at_fpr` is the TPR at a false-positive *rate* (at most ⌊rate · N_non-lens⌋ false
  positives), which unlike TPR_n does not depend on the test set's size.
* Decision thresholds (two classes): an image is called a lens when its lens score (the
  probability of class 1) is strictly greater than the threshold, so the threshold 0.5 gives
  the argmax prediction. :func:`threshold_for_fpr` picks the threshold for a target
  false-positive rate; :func:`fp_per_true_lens` converts a (FPR, TPR) operating point into the
  false positives expected per true lens in a survey where lenses are a fraction ``lens_rate``
  of all images: FP/TP = (FPR/TPR) * (1 - rate) / rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PROBA_SUM_TOLERANCE = 1e-3  # |row sum - 1| allowed for float32 softmax outputs
CHALLENGE_TPRS = (0, 10)  # the challenge's TPR0 and TPR10 (keys tpr0, tpr10)
LENS_FINDING_FPRS = (1e-3, 1e-4)  # TPR at these false-positive rates (keys tpr_at_fpr_1e-03, ...)
DEFAULT_LENS_RATE = 1e-3  # one lens per 1000 galaxies, the order of magnitude of wide surveys
ARGMAX_THRESHOLD = 0.5  # two classes: "lens score > 0.5" is the argmax prediction
_FP_COUNT_SLACK = 1e-9  # so that e.g. 0.29 * 100 allows 29 false positives, not 28


# ----------------------------------------------------------------------------------------- check


def _as_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    return array


def _check_labels(y_true: Any, name: str = "y_true", n_classes: int | None = None) -> np.ndarray:
    """Integer class labels in ``[0, n_classes)`` as int64."""
    labels = _as_1d(y_true, name)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number):
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise ValueError(f"{name} must hold integer class indices, found non-integer values")
    labels = labels.astype(np.int64)
    if np.any(labels < 0):
        raise ValueError(f"{name} holds negative labels (min {labels.min()}); use 0..n_classes-1")
    if n_classes is not None and np.any(labels >= n_classes):
        raise ValueError(
            f"{name} holds label {labels.max()} but there are only {n_classes} classes "
            f"(valid labels 0..{n_classes - 1})"
        )
    return labels


def _check_binary_labels(y_true01: Any) -> np.ndarray:
    labels = _check_labels(y_true01, "y_true01")
    if np.any(labels > 1):
        raise ValueError(f"y_true01 must hold only 0 and 1, found label {labels.max()}")
    return labels


def _check_score(score: Any, n: int, name: str = "score") -> np.ndarray:
    values = _as_1d(score, name)
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"{name} must be real numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if values.shape[0] != n:
        raise ValueError(f"{name} has {values.shape[0]} entries but the labels have {n}")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{name} holds a non-finite value at index {bad}: {values[bad]}")
    return values


def _check_proba(proba: Any, n: int) -> np.ndarray:
    """Class probabilities ``[n, n_classes]``: finite, in [0, 1], rows summing to one."""
    values = np.asarray(proba)
    if values.ndim != 2:
        raise ValueError(f"proba must be 2-D [n_samples, n_classes], got shape {values.shape}")
    if values.shape[1] < 2:
        raise ValueError(f"proba needs at least 2 class columns, got {values.shape[1]}")
    if values.shape[0] != n:
        raise ValueError(f"proba has {values.shape[0]} rows but y_true has {n} labels")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"proba must be real numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        row = int(np.flatnonzero(~np.all(np.isfinite(values), axis=1))[0])
        raise ValueError(f"proba row {row} holds a non-finite value: {values[row].tolist()}")
    tol = PROBA_SUM_TOLERANCE
    if np.any(values < -tol) or np.any(values > 1 + tol):
        raise ValueError(
            f"proba must lie in [0, 1] (min {values.min():.4g}, max {values.max():.4g}); "
            "pass softmax probabilities, not logits"
        )
    row_sums = values.sum(axis=1)
    off = np.abs(row_sums - 1.0) > tol
    if np.any(off):
        row = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"proba rows must sum to 1: row {row} sums to {row_sums[row]:.6g} "
            f"({int(off.sum())} rows off by more than {tol}); apply softmax to the logits"
        )
    return values


def check_multiclass(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(labels int64 [n], proba float64 [n, n_classes])`` or a ValueError saying why."""
    labels = _check_labels(y_true, "y_true")
    probs = _check_proba(proba, labels.shape[0])
    return _check_labels(labels, "y_true", probs.shape[1]), probs


def _check_predictions(y_true: Any, y_pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"n_classes must be an integer, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    truth = _check_labels(y_true, "y_true", int(n_classes))
    pred = _check_labels(y_pred, "y_pred", int(n_classes))
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.shape[0]} labels but y_pred has {pred.shape[0]}")
    return truth, pred


def _require_both_classes(labels: np.ndarray, what: str) -> None:
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.shape[0]:
        present = "positives" if n_pos else "negatives"
        raise ValueError(
            f"{what} needs both positives (1) and negatives (0) in y_true; got only {present}"
        )


def check_class_names(class_names: Sequence[str], n_classes: int) -> list[str]:
    """Class names as strings; ValueError unless there are ``n_classes`` unique ones."""
    names = [str(name) for name in class_names]
    if len(names) != n_classes:
        raise ValueError(
            f"got {len(names)} class names {names} for {n_classes} probability columns"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be unique, got {names}")
    return names


# --------------------------------------------------------------------------------------- compute


def _threshold_counts(y01: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative (true positives, false positives, threshold) at each distinct score, high→low."""
    order = np.argsort(-score, kind="mergesort")
    sorted_score = score[order]
    sorted_y = y01[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(sorted_score)), sorted_score.size - 1]
    tps = np.cumsum(sorted_y)[last_of_group].astype(np.float64)
    fps = (last_of_group + 1) - tps
    return tps, fps, sorted_score[last_of_group]


def _rank_auc(y01: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic with mid-ranks for ties (one sort); NaN if undefined.

    Equal to the trapezoidal area under the ROC curve: a tie between a positive and a negative
    counts one half.
    """
    n = score.size
    n_pos = int(y01.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    sorted_score = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_score)) + 1]
    ends = np.r_[starts[1:], n]
    mid_ranks = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    positive_rank_sum = mid_ranks[y01[order].astype(bool)].sum()
    return float((positive_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _per_class_auc(labels: np.ndarray, proba: np.ndarray) -> np.ndarray:
    return np.array(
        [_rank_auc((labels == k).astype(np.int64), proba[:, k]) for k in range(proba.shape[1])]
    )


def _require_two_present(labels: np.ndarray, what: str) -> None:
    present = np.unique(labels)
    if present.size < 2:
        raise ValueError(
            f"{what} needs at least two classes present in y_true; found only class {present[0]}"
        )


def _nan_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


# ------------------------------------------------------------------------------ public: binary


def roc_curve_binary(y_true01: Any, score: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)``; every distinct score is a threshold.

    A sample is called positive when ``score >= threshold``. The curve starts at (0, 0) with
    threshold ``+inf``; thresholds then decrease. Needs both classes in ``y_true01``.
    """
    labels = _check_binary_labels(y_true01)
    values = _check_score(score, labels.shape[0])
    _require_both_classes(labels, "a ROC curve")
    tps, fps, thresholds = _threshold_counts(labels, values)
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return fpr, tpr, np.r_[np.inf, thresholds]


def auc_trapezoid(x: Any, y: Any) -> float:
    """Area under the piecewise-linear curve through ``(x, y)``; ``x`` must be monotonic."""
    xs = _as_1d(x, "x")
    xs = _check_score(xs, xs.shape[0], "x")
    ys = _check_score(y, xs.shape[0], "y")
    if xs.shape[0] < 2:
        raise ValueError(f"an area needs at least 2 points, got {xs.shape[0]}")
    steps = np.diff(xs)
    if np.all(steps >= 0):
        direction = 1.0
    elif np.all(steps <= 0):
        direction = -1.0
    else:
        raise ValueError("x must be monotonic (all increasing or all decreasing) for an area")
    return float(direction * np.sum(steps * (ys[1:] + ys[:-1]) / 2.0))


def roc_auc_binary(y_true01: Any, score: Any) -> float:
    """Area under the ROC curve of a two-class problem (0.5 = chance, 1 = perfect ranking)."""
    fpr, tpr, _ = roc_curve_binary(y_true01, score)
    return auc_trapezoid(fpr, tpr)


def partial_auc(y_true01: Any, score: Any, max_fpr: float = 0.1) -> float:
    """Standardised partial AUC over false-positive rates up to ``max_fpr`` (McClish 1989, Med.
    Decis. Making 9, 190): the area under the ROC curve between FPR 0 and ``max_fpr`` (the curve
    interpolated linearly at ``max_fpr``), mapped so that chance is 0.5 and a perfect ranking 1.
    It weighs only the low-FPR end that a finder is judged on, but uses every non-lens scored
    in that range, so it varies less between epochs than a TPR at one FPR."""
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    fpr, tpr, _ = roc_curve_binary(y_true01, score)
    if max_fpr == 1.0:
        return auc_trapezoid(fpr, tpr)
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    x = np.r_[fpr[:stop], max_fpr]
    y = np.r_[tpr[:stop], np.interp(max_fpr, fpr, tpr)]
    area = auc_trapezoid(x, y)
    chance, perfect = 0.5 * max_fpr**2, max_fpr
    return float(0.5 * (1.0 + (area - chance) / (perfect - chance)))


def precision_recall_curve_binary(
    y_true01: Any, score: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision-recall curve ``(precision, recall, thresholds)`` with thresholds increasing.

    Like scikit-learn: the last point is (precision 1, recall 0) and has no threshold. Needs at
    least one positive.
    """
    labels = _check_binary_labels(y_true01)
    values = _check_score(score, labels.shape[0])
    if labels.sum() == 0:
        raise ValueError("a precision-recall curve needs at least one positive (1) in y_true01")
    tps, fps, thresholds = _threshold_counts(labels, values)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def pr_auc(y_true01: Any, score: Any) -> float:
    """Average precision: sum over thresholds of (recall gain) x precision, no interpolation."""
    precision, recall, _ = precision_recall_curve_binary(y_true01, score)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def tpr_at_fp(y_true01: Any, score: Any, n_fp: int) -> float:
    """Highest true-positive rate over thresholds that admit at most ``n_fp`` false positives.

    ``n_fp=0`` is the Bologna challenge TPR0: the fraction of lenses scored strictly above every
    non-lens. Thresholds are the distinct scores, so a lens tied with a non-lens is only counted
    together with that false positive (ties go against the lens). Needs both classes.
    """
    if isinstance(n_fp, bool) or not isinstance(n_fp, (int, np.integer)) or n_fp < 0:
        raise ValueError(f"n_fp must be a non-negative integer, got {n_fp!r}")
    labels = _check_binary_labels(y_true01)
    values = _check_score(score, labels.shape[0])
    _require_both_classes(labels, "a true-positive rate at fixed false positives")
    tps, fps, _ = _threshold_counts(labels, values)
    allowed = tps[fps <= n_fp]
    return float(allowed.max() / tps[-1]) if allowed.size else 0.0


def challenge_tpr(y_true01: Any, score: Any, n: int) -> float:
    """The Bologna challenge's TPR_n (Metcalf et al. 2019): the highest TPR before the n-th false
    positive, i.e. with fewer than ``n`` false positives (TPR0: before the first one).

    ``challenge_tpr(y, s, 10)`` is ``tpr_at_fp(y, s, 9)``; ``challenge_tpr(y, s, 0)`` and
    ``challenge_tpr(y, s, 1)`` are both ``tpr_at_fp(y, s, 0)``. The count depends on how many
    non-lenses the test set holds (the challenge had 50,000–60,000).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return tpr_at_fp(y_true01, score, max(int(n) - 1, 0))


def tpr_at_fpr(y_true01: Any, score: Any, target_fpr: float) -> float:
    """Highest TPR with a false-positive rate of at most ``target_fpr`` (see
    :func:`threshold_for_fpr`); with N non-lenses, ⌊target · N⌋ false positives are allowed, so a
    rate below 1/N means none."""
    return threshold_for_fpr(y_true01, score, target_fpr).tpr


def fpr_key(target_fpr: float) -> str:
    """The metrics key of the TPR at a false-positive rate: ``tpr_at_fpr_1e-03`` for 0.001."""
    return f"tpr_at_fpr_{target_fpr:.0e}"


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold on a lens score and what it gives on the data it was chosen on.

    Images with ``score > threshold`` are called lenses; ``fpr``/``tpr`` are the resulting
    false- and true-positive rates, ``allowed_false_positives`` the count the target permitted.
    """

    threshold: float
    target_fpr: float
    fpr: float
    tpr: float
    allowed_false_positives: int
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.threshold,
            "target_fpr": self.target_fpr,
            "fpr": self.fpr,
            "tpr": self.tpr,
            "allowed_false_positives": self.allowed_false_positives,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
        }


def threshold_for_fpr(y_true01: Any, score: Any, target_fpr: float) -> ThresholdChoice:
    """The decision threshold (``score > threshold``) with the highest TPR at FPR <= ``target_fpr``.

    With ``N`` negatives, ``k = floor(target_fpr * N)`` false positives are allowed, so the
    threshold may not lie below the (k+1)-th highest negative score. Of the thresholds that keep
    the most positives above it, the highest is taken (fewest false positives for the same TPR):
    halfway between the lowest positive score kept and the next lower score of any sample, which
    leaves a margin against rounding. When no positive can be kept, the threshold is the highest
    negative score (FPR 0, TPR 0).
    """
    if isinstance(target_fpr, bool) or not isinstance(target_fpr, (int, float, np.floating)):
        raise ValueError(f"target_fpr must be a number in (0, 1), got {target_fpr!r}")
    if not 0 < target_fpr < 1:
        raise ValueError(f"target_fpr must be in (0, 1), got {target_fpr}")
    labels = _check_binary_labels(y_true01)
    values = _check_score(score, labels.shape[0])
    _require_both_classes(labels, "choosing a threshold for a false-positive rate")
    negatives = np.sort(values[labels == 0])[::-1]
    positives = values[labels == 1]
    allowed = int(math.floor(target_fpr * negatives.size + _FP_COUNT_SLACK))
    kept = positives[positives > negatives[allowed]]
    if kept.size:
        lowest_kept = kept.min()
        below = float(values[values < lowest_kept].max())
        midpoint = below + (lowest_kept - below) / 2.0
        # adjacent floats have no number strictly between them: then cut at the lower one
        threshold = float(midpoint) if below < midpoint < lowest_kept else below
    else:
        threshold = float(negatives[0])
    return ThresholdChoice(
        threshold=threshold,
        target_fpr=float(target_fpr),
        fpr=float(np.mean(negatives > threshold)),
        tpr=float(np.mean(positives > threshold)),
        allowed_false_positives=allowed,
        n_positive=int(positives.size),
        n_negative=int(negatives.size),
    )


def check_lens_rate(lens_rate: Any) -> float:
    """``lens_rate`` as a float in (0, 1), or a ValueError saying what it means."""
    if isinstance(lens_rate, bool) or not isinstance(lens_rate, (int, float, np.floating)):
        raise ValueError(f"lens_rate must be a number in (0, 1), got {lens_rate!r}")
    if not 0 < lens_rate < 1:
        raise ValueError(
            f"lens_rate (fraction of survey images that are lenses) must be in (0, 1), "
            f"got {lens_rate}; e.g. 0.001 for one lens per 1000 galaxies"
        )
    return float(lens_rate)


def fp_per_true_lens(fpr: float, tpr: float, lens_rate: float = DEFAULT_LENS_RATE) -> float:
    """False positives expected per true lens found, in a survey with lens fraction ``lens_rate``.

    Among ``M`` survey images there are ``rate M`` lenses and ``(1 - rate) M`` non-lenses, so at
    an operating point (FPR, TPR) the survey yields ``FP / TP = (FPR / TPR) (1 - rate) / rate``.
    Infinite when no lens is found but non-lenses are; NaN when nothing is selected at all.
    """
    rate = check_lens_rate(lens_rate)
    for name, value in (("fpr", fpr), ("tpr", tpr)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be a rate in [0, 1], got {value}")
    if tpr == 0:
        return math.nan if fpr == 0 else math.inf
    return float(fpr / tpr * (1 - rate) / rate)


def lens_finding_at_threshold(
    y_true01: Any, score: Any, threshold: float, lens_rate: float = DEFAULT_LENS_RATE
) -> dict[str, Any]:
    """Scores of the decision ``score > threshold`` on a labelled set, and in a survey.

    Keys: ``decision_threshold``, ``precision_at_threshold`` (of this set: its lens fraction
    sets it; 0 when nothing is called a lens), ``recall_at_threshold`` (= TPR),
    ``fpr_at_threshold``, ``lens_rate``, ``fp_per_lens`` (:func:`fp_per_true_lens`, None when
    undefined) and ``survey_precision`` = 1 / (1 + fp_per_lens), the purity expected in the
    survey.
    """
    if not isinstance(threshold, (int, float, np.floating)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    rate = check_lens_rate(lens_rate)
    labels = _check_binary_labels(y_true01)
    values = _check_score(score, labels.shape[0])
    _require_both_classes(labels, "lens-finding scores at a threshold")
    called = values > threshold
    true_pos = int(np.sum(called & (labels == 1)))
    false_pos = int(np.sum(called & (labels == 0)))
    tpr = true_pos / int(labels.sum())
    fpr = false_pos / int((labels == 0).sum())
    per_lens = fp_per_true_lens(fpr, tpr, rate)
    return {
        "decision_threshold": float(threshold),
        "precision_at_threshold": true_pos / (true_pos + false_pos) if called.any() else 0.0,
        "recall_at_threshold": tpr,
        "fpr_at_threshold": fpr,
        "lens_rate": rate,
        "fp_per_lens": _json_float(per_lens),
        "survey_precision": _json_float(_purity(per_lens)),
    }


def _purity(fp_per_lens: float) -> float:
    """TP / (TP + FP) from FP / TP: 0 when no lens is found, NaN when nothing is selected."""
    if math.isnan(fp_per_lens):
        return math.nan
    return 0.0 if math.isinf(fp_per_lens) else 1.0 / (1.0 + fp_per_lens)


# -------------------------------------------------------------------------- public: multi-class


def roc_auc_per_class(y_true: Any, proba: Any) -> np.ndarray:
    """One-vs-rest ROC AUC of each class; NaN for a class absent from (or alone in) ``y_true``."""
    labels, probs = check_multiclass(y_true, proba)
    return _per_class_auc(labels, probs)


def macro_auc_ovr(y_true: Any, proba: Any) -> float:
    """Mean one-vs-rest ROC AUC over the classes present in ``y_true`` (one sort per class)."""
    labels, probs = check_multiclass(y_true, proba)
    _require_two_present(labels, "a macro AUC")
    return _nan_mean(_per_class_auc(labels, probs))


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.int64)


def micro_auc(y_true: Any, proba: Any) -> float:
    """ROC AUC of all (sample, class) pairs pooled: one-hot truth against the probabilities."""
    labels, probs = check_multiclass(y_true, proba)
    return _rank_auc(_one_hot(labels, probs.shape[1]).ravel(), probs.ravel())


def micro_roc_curve(y_true: Any, proba: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve ``(fpr, tpr, thresholds)`` of all (sample, class) pairs pooled."""
    labels, probs = check_multiclass(y_true, proba)
    return roc_curve_binary(_one_hot(labels, probs.shape[1]).ravel(), probs.ravel())


def macro_auc_ovo(y_true: Any, proba: Any) -> float:
    """Hand & Till (2001) one-vs-one AUC: mean over class pairs of (A(a|b) + A(b|a)) / 2.

    ``A(a|b)`` ranks the samples of classes a and b by ``proba[:, a]``. Pairs with an absent class
    are left out.
    """
    labels, probs = check_multiclass(y_true, proba)
    _require_two_present(labels, "a one-vs-one AUC")
    present = np.unique(labels)
    pair_scores = []
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            in_pair = (labels == a) | (labels == b)
            is_a = (labels[in_pair] == a).astype(np.int64)
            a_vs_b = _rank_auc(is_a, probs[in_pair, a])
            b_vs_a = _rank_auc(1 - is_a, probs[in_pair, b])
            pair_scores.append((a_vs_b + b_vs_a) / 2.0)
    return float(np.mean(pair_scores))


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Counts ``[n_classes, n_classes]``: row = true class, column = predicted class."""
    truth, pred = _check_predictions(y_true, y_pred, n_classes)
    flat = np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


@dataclass(frozen=True)
class PrecisionRecallF1:
    """Per-class precision, recall, F1 and support, with their macro and weighted averages."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    macro: dict[str, float]
    weighted: dict[str, float]


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_recall_f1(y_true: Any, y_pred: Any, n_classes: int) -> PrecisionRecallF1:
    """Precision, recall and F1 per class (0 where undefined) plus macro/weighted averages."""
    counts = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    true_pos = np.diag(counts)
    predicted = counts.sum(axis=0)
    support = counts.sum(axis=1)
    precision = _safe_ratio(true_pos, predicted)
    recall = _safe_ratio(true_pos, support)
    f1 = _safe_ratio(2 * true_pos, predicted + support)
    weights = support / support.sum()
    per_class = {"precision": precision, "recall": recall, "f1": f1}
    return PrecisionRecallF1(
        precision=precision,
        recall=recall,
        f1=f1,
        support=support.astype(np.int64),
        accuracy=float(true_pos.sum() / support.sum()),
        macro={name: float(v.mean()) for name, v in per_class.items()},
        weighted={name: float(np.sum(v * weights)) for name, v in per_class.items()},
    )


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    truth = _check_labels(y_true, "y_true")
    pred = _check_labels(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise ValueError(f"y_true has {truth.shape[0]} labels but y_pred has {pred.shape[0]}")
    return float(np.mean(truth == pred))


def classification_report_dict(
    y_true: Any, y_pred: Any, class_names: Sequence[str]
) -> dict[str, Any]:
    """Per-class and averaged scores, keyed like scikit-learn's report with ``output_dict=True``."""
    names = check_class_names(class_names, len(class_names))
    scores = precision_recall_f1(y_true, y_pred, len(names))
    total = int(scores.support.sum())
    report: dict[str, Any] = {
        name: {
            "precision": float(scores.precision[k]),
            "recall": float(scores.recall[k]),
            "f1-score": float(scores.f1[k]),
            "support": int(scores.support[k]),
        }
        for k, name in enumerate(names)
    }
    report["accuracy"] = scores.accuracy
    for key, averages in (("macro avg", scores.macro), ("weighted avg", scores.weighted)):
        report[key] = {
            "precision": averages["precision"],
            "recall": averages["recall"],
            "f1-score": averages["f1"],
            "support": total,
        }
    return report


# ------------------------------------------------------------------------------------ summary


def _json_float(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def two_class_predictions(proba: np.ndarray, threshold: float | None) -> np.ndarray:
    """Predicted classes: argmax, or for two classes and a threshold ``p[:, 1] > threshold``."""
    if threshold is None:
        return np.argmax(proba, axis=1)
    if proba.shape[1] != 2:
        raise ValueError(
            f"a decision threshold applies to two-class scores only; got {proba.shape[1]} classes"
        )
    return (proba[:, 1] > threshold).astype(np.int64)


def classification_metrics(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    *,
    threshold: float | None = None,
    lens_rate: float = DEFAULT_LENS_RATE,
) -> dict[str, Any]:
    """All standard metrics of a classifier as a JSON-serialisable dict (NaN stored as None).

    Predictions are ``argmax(proba)``, or with two classes and a ``threshold`` ``proba[:, 1] >
    threshold``. Keys: ``n_samples``, ``class_names``, ``accuracy``, ``macro_auc``
    (one-vs-rest), ``micro_auc``, ``ovo_macro_auc``, ``auc_per_class`` (by class name; None for
    classes absent from ``y_true``), ``precision_macro``, ``recall_macro``, ``f1_macro``,
    ``precision_weighted``, ``recall_weighted``, ``f1_weighted``, ``confusion_matrix`` (rows
    true, columns predicted) and ``classification_report``. With two classes also ``tpr0``,
    ``tpr1``, ``tpr10`` and ``pr_auc``, scoring class 1 by ``proba[:, 1]``, and the keys of
    :func:`lens_finding_at_threshold` at ``threshold`` (0.5, the argmax cut, when None) and
    ``lens_rate``.
    """
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    _require_two_present(labels, "classification metrics")
    y_pred = two_class_predictions(probs, threshold)
    n_classes = len(names)
    scores = precision_recall_f1(labels, y_pred, n_classes)
    per_class_auc = _per_class_auc(labels, probs)
    metrics: dict[str, Any] = {
        "n_samples": int(labels.shape[0]),
        "class_names": names,
        "accuracy": scores.accuracy,
        "macro_auc": _json_float(_nan_mean(per_class_auc)),
        "micro_auc": _json_float(micro_auc(labels, probs)),
        "ovo_macro_auc": _json_float(macro_auc_ovo(labels, probs)),
        "auc_per_class": {
            name: _json_float(v) for name, v in zip(names, per_class_auc, strict=True)
        },
        "precision_macro": scores.macro["precision"],
        "recall_macro": scores.macro["recall"],
        "f1_macro": scores.macro["f1"],
        "precision_weighted": scores.weighted["precision"],
        "recall_weighted": scores.weighted["recall"],
        "f1_weighted": scores.weighted["f1"],
        "confusion_matrix": confusion_matrix(labels, y_pred, n_classes).tolist(),
        "classification_report": classification_report_dict(labels, y_pred, names),
    }
    if n_classes == 2:
        for n in CHALLENGE_TPRS:
            metrics[f"tpr{n}"] = challenge_tpr(labels, probs[:, 1], n)
        for rate in LENS_FINDING_FPRS:
            metrics[fpr_key(rate)] = tpr_at_fpr(labels, probs[:, 1], rate)
        metrics["pr_auc"] = pr_auc(labels, probs[:, 1])
        cut = ARGMAX_THRESHOLD if threshold is None else threshold
        metrics.update(lens_finding_at_threshold(labels, probs[:, 1], cut, lens_rate))
    return metrics
