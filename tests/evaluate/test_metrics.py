"""darklens.evaluate.metrics against scikit-learn (the independent reference) and hand examples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from darklens.evaluate import metrics as dm

SEEDS = (0, 1, 2)


def binary_case(seed: int, n: int = 60, ties: bool = False, positive_rate: float = 0.5):
    """Random labels with scores loosely correlated to them; ``ties`` rounds scores to 1 decimal."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positive_rate).astype(int)
    y[:2] = [0, 1]  # both classes present
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y)))
    return y, np.round(score, 1) if ties else score


def multiclass_case(
    seed: int, n: int = 80, k: int = 3, ties: bool = False, weights: tuple[float, ...] | None = None
):
    """Random labels (optionally imbalanced) and softmax probabilities that favour the truth."""
    rng = np.random.default_rng(seed)
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    y = rng.choice(k, size=n, p=p)
    y[:k] = np.arange(k)  # every class present
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:  # few distinct rows, so many tied scores within each column
        proba = np.round(proba, 1) + 1e-3
        proba /= proba.sum(axis=1, keepdims=True)
    return y, proba


MULTICLASS_CASES = [
    pytest.param(dict(seed=s, k=k, ties=t), id=f"seed{s}-k{k}-ties{t}")
    for s in SEEDS
    for k in (2, 3, 5)
    for t in (False, True)
] + [
    pytest.param(dict(seed=3, k=3, weights=(0.8, 0.15, 0.05), n=120), id="imbalanced3"),
    pytest.param(dict(seed=4, k=4, weights=(0.05, 0.05, 0.1, 0.8), n=150, ties=True), id="imb4"),
]


# ----------------------------------------------------------------------------------- binary


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("positive_rate", [0.5, 0.1])
def test_roc_curve_matches_sklearn(seed, ties, positive_rate):
    y, score = binary_case(seed, ties=ties, positive_rate=positive_rate)
    fpr, tpr, thresholds = dm.roc_curve_binary(y, score)
    ref_fpr, ref_tpr, ref_thr = skm.roc_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_array_equal(thresholds, ref_thr)
    assert dm.roc_auc_binary(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_precision_recall_and_average_precision_match_sklearn(seed, ties):
    y, score = binary_case(seed, ties=ties, positive_rate=0.3)
    precision, recall, thresholds = dm.precision_recall_curve_binary(y, score)
    ref_p, ref_r, ref_t = skm.precision_recall_curve(y, score, drop_intermediate=False)
    np.testing.assert_allclose(precision, ref_p)
    np.testing.assert_allclose(recall, ref_r)
    np.testing.assert_allclose(thresholds, ref_t)
    ref_ap = skm.average_precision_score(y, score)
    assert dm.pr_auc(y, score) == pytest.approx(ref_ap, abs=1e-12)


def test_average_precision_without_negatives_is_one():
    assert dm.pr_auc([1, 1, 1], [0.2, 0.5, 0.9]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_trapezoid_matches_sklearn_in_both_directions(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.random(15))
    y = rng.random(15)
    assert dm.auc_trapezoid(x, y) == pytest.approx(skm.auc(x, y))
    assert dm.auc_trapezoid(x[::-1], y[::-1]) == pytest.approx(skm.auc(x[::-1], y[::-1]))


def test_auc_trapezoid_rejects_non_monotonic_x():
    with pytest.raises(ValueError, match="monotonic"):
        dm.auc_trapezoid([0.0, 0.5, 0.2], [0.0, 1.0, 1.0])


# ------------------------------------------------------------------------------ lens finding


def test_tpr_at_fp_hand_example_with_a_tie():
    # Sorted by score: 0.9 L, 0.8 L, 0.7 N + 0.7 L (tie), 0.6 N, 0.5 L, 0.4 N, 0.3 N; 4 lenses.
    # Cut above 0.8 -> TP 2, FP 0.  Cut at 0.7 takes the tied lens *and* non-lens: TP 3, FP 1.
    # Cut at 0.6 -> TP 3, FP 2.  Cut at 0.5 -> TP 4, FP 2.
    # So TPR0 = 2/4 (the tied lens goes with the false positive), TPR1 = 3/4, TPR2 = TPR10 = 1.
    y = [1, 1, 0, 1, 0, 1, 0, 0]
    s = [0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.4, 0.3]
    assert dm.tpr_at_fp(y, s, 0) == 0.5
    assert dm.tpr_at_fp(y, s, 1) == 0.75
    assert dm.tpr_at_fp(y, s, 2) == 1.0
    assert dm.tpr_at_fp(y, s, 10) == 1.0


def test_tpr_at_fp_hand_example_non_lens_on_top():
    # The top-scored object is a non-lens: no lens can be kept without it, so TPR0 = 0.
    # Allowing one false positive keeps both lenses (scores 0.5, 0.4): TPR1 = 1.
    y = [0, 1, 1, 0]
    s = [0.9, 0.5, 0.4, 0.1]
    assert dm.tpr_at_fp(y, s, 0) == 0.0
    assert dm.tpr_at_fp(y, s, 1) == 1.0


def test_tpr_at_fp_hand_example_ten_false_positives():
    # 3 lenses scored 95, 52, 5; 20 non-lenses scored 90, 86, ..., 14 (step 4).
    # Non-lenses above 52: 90, 86, ..., 54, i.e. (90 - 54) / 4 + 1 = 10 of them.
    # Cut at 95 -> TP 1, FP 0; cut at 54 -> TP 1, FP 10; cut at 52 -> TP 2, FP 10;
    # cut at 5 -> TP 3, FP 20.  So TPR0 = TPR9 = 1/3, TPR10 = 2/3, TPR20 = 1.
    non_lens = 90 - 4 * np.arange(20)
    y = np.r_[np.ones(3, int), np.zeros(20, int)]
    s = np.r_[[95, 52, 5], non_lens]
    assert dm.tpr_at_fp(y, s, 0) == pytest.approx(1 / 3)
    assert dm.tpr_at_fp(y, s, 9) == pytest.approx(1 / 3)
    assert dm.tpr_at_fp(y, s, 10) == pytest.approx(2 / 3)
    assert dm.tpr_at_fp(y, s, 19) == pytest.approx(2 / 3)
    assert dm.tpr_at_fp(y, s, 20) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_tpr_at_fp_agrees_with_sklearn_roc_points(seed):
    # Independent route: the sklearn ROC curve's points with FP count <= n.
    y, score = binary_case(seed, n=200, ties=True, positive_rate=0.2)
    fpr, tpr, _ = skm.roc_curve(y, score, drop_intermediate=False)
    n_neg = int(np.sum(y == 0))
    for n_fp in (0, 1, 3, 10):
        expected = tpr[np.round(fpr * n_neg) <= n_fp].max()
        assert dm.tpr_at_fp(y, score, n_fp) == pytest.approx(expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_partial_auc_agrees_with_sklearn_max_fpr(seed):
    y, score = binary_case(seed, n=300, ties=True, positive_rate=0.3)
    for max_fpr in (0.01, 0.1, 0.37):
        expected = skm.roc_auc_score(y, score, max_fpr=max_fpr)
        assert dm.partial_auc(y, score, max_fpr) == pytest.approx(expected, abs=1e-12)
    assert dm.partial_auc(y, score, 1.0) == pytest.approx(skm.roc_auc_score(y, score))


def test_partial_auc_hand_cases():
    perfect, reversed_ = [0.1, 0.2, 0.8, 0.9], [0.9, 0.8, 0.2, 0.1]
    y = [0, 0, 1, 1]
    assert dm.partial_auc(y, perfect, 0.1) == pytest.approx(1.0)
    assert dm.partial_auc(y, reversed_, 0.1) == pytest.approx(0.5 * (1 - 0.005 / 0.095))
    with pytest.raises(ValueError, match="max_fpr"):
        dm.partial_auc(y, perfect, 0.0)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_tpr_at_fp_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="n_fp"):
        dm.tpr_at_fp([0, 1], [0.1, 0.9], bad)


# ------------------------------------------------------------------------------- multi-class


@pytest.mark.parametrize("case", MULTICLASS_CASES)
def test_auc_averages_match_sklearn(case):
    y, proba = multiclass_case(**case)
    k = proba.shape[1]
    if k == 2:
        reference = skm.roc_auc_score(y, proba[:, 1])
        assert dm.macro_auc_ovr(y, proba) == pytest.approx(reference, abs=1e-12)
        assert dm.macro_auc_ovo(y, proba) == pytest.approx(reference, abs=1e-12)
    else:
        ovr = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        ovo = skm.roc_auc_score(y, proba, multi_class="ovo", average="macro")
        assert dm.macro_auc_ovr(y, proba) == pytest.approx(ovr, abs=1e-12)
        assert dm.macro_auc_ovo(y, proba) == pytest.approx(ovo, abs=1e-12)
    per_class = [skm.roc_auc_score(y == c, proba[:, c]) for c in range(k)]
    np.testing.assert_allclose(dm.roc_auc_per_class(y, proba), per_class, atol=1e-12)
    one_hot = label_binarize(y, classes=np.arange(k)) if k > 2 else np.eye(2)[y]
    micro = skm.roc_auc_score(one_hot, proba, average="micro")
    assert dm.micro_auc(y, proba) == pytest.approx(micro, abs=1e-12)


def test_absent_class_has_nan_auc_and_is_left_out_of_averages():
    y, proba = multiclass_case(seed=5, n=90, k=4)
    y[y == 2] = 0  # class 2 absent from the truth
    per_class = dm.roc_auc_per_class(y, proba)
    assert math.isnan(per_class[2])
    present = [0, 1, 3]
    expected = [skm.roc_auc_score(y == c, proba[:, c]) for c in present]
    np.testing.assert_allclose(per_class[present], expected, atol=1e-12)
    assert dm.macro_auc_ovr(y, proba) == pytest.approx(np.mean(expected), abs=1e-12)
    pairs = []
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            mask = np.isin(y, [a, b])
            pairs.append(
                (
                    skm.roc_auc_score(y[mask] == a, proba[mask, a])
                    + skm.roc_auc_score(y[mask] == b, proba[mask, b])
                )
                / 2
            )
    assert dm.macro_auc_ovo(y, proba) == pytest.approx(np.mean(pairs), abs=1e-12)
    micro = skm.roc_auc_score(label_binarize(y, classes=range(4)), proba, average="micro")
    assert dm.micro_auc(y, proba) == pytest.approx(micro, abs=1e-12)


def test_macro_auc_needs_two_classes_present():
    _, proba = multiclass_case(seed=0, n=10, k=3)
    with pytest.raises(ValueError, match="at least two classes"):
        dm.macro_auc_ovr(np.ones(10, int), proba)
    with pytest.raises(ValueError, match="at least two classes"):
        dm.macro_auc_ovo(np.ones(10, int), proba)


@pytest.mark.parametrize("case", MULTICLASS_CASES)
def test_confusion_precision_recall_f1_match_sklearn(case):
    y, proba = multiclass_case(**case)
    k = proba.shape[1]
    y_pred = np.argmax(proba, axis=1)
    y_pred[y_pred == k - 1] = 0  # the last class is never predicted: zero-division path
    labels = np.arange(k)
    np.testing.assert_array_equal(
        dm.confusion_matrix(y, y_pred, k), skm.confusion_matrix(y, y_pred, labels=labels)
    )
    scores = dm.precision_recall_f1(y, y_pred, k)
    p, r, f, s = skm.precision_recall_fscore_support(y, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(scores.precision, p)
    np.testing.assert_allclose(scores.recall, r)
    np.testing.assert_allclose(scores.f1, f)
    np.testing.assert_array_equal(scores.support, s)
    for average in ("macro", "weighted"):
        ref = skm.precision_recall_fscore_support(
            y, y_pred, labels=labels, average=average, zero_division=0
        )
        ours = getattr(scores, average)
        assert [ours["precision"], ours["recall"], ours["f1"]] == pytest.approx(list(ref[:3]))
    assert scores.accuracy == pytest.approx(skm.accuracy_score(y, y_pred))
    assert dm.accuracy(y, y_pred) == pytest.approx(skm.accuracy_score(y, y_pred))


def test_class_absent_from_truth_and_predictions_scores_zero_in_macro_average():
    y = np.array([0, 0, 1, 1, 0])
    y_pred = np.array([0, 1, 1, 1, 0])
    scores = dm.precision_recall_f1(y, y_pred, 3)
    ref = skm.precision_recall_fscore_support(
        y, y_pred, labels=[0, 1, 2], average="macro", zero_division=0
    )
    assert scores.f1[2] == 0.0
    assert scores.macro["f1"] == pytest.approx(ref[2])


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_report_matches_sklearn(seed):
    y, proba = multiclass_case(seed, k=3, weights=(0.6, 0.3, 0.1), n=70)
    y_pred = np.argmax(proba, axis=1)
    names = ["no_sub", "cdm", "axion"]
    ours = dm.classification_report_dict(y, y_pred, names)
    ref = skm.classification_report(
        y, y_pred, labels=[0, 1, 2], target_names=names, output_dict=True, zero_division=0
    )
    assert set(ours) == set(ref)
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])
    for key in set(ref) - {"accuracy"}:
        assert ours[key] == pytest.approx(ref[key]), key
        assert isinstance(ours[key]["support"], int)


# ---------------------------------------------------------------------------------- summary


def strict_json_roundtrip(value):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(json.dumps(value, allow_nan=False), parse_constant=reject)


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_three_classes(seed):
    y, proba = multiclass_case(seed, k=3, n=90)
    names = ["no_sub", "cdm", "axion"]
    result = dm.classification_metrics(y, proba, names)
    assert strict_json_roundtrip(result) == result
    y_pred = np.argmax(proba, axis=1)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    assert result["macro_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert result["ovo_macro_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovo"))
    assert result["f1_weighted"] == pytest.approx(skm.f1_score(y, y_pred, average="weighted"))
    assert result["recall_macro"] == pytest.approx(skm.recall_score(y, y_pred, average="macro"))
    assert list(result["auc_per_class"]) == names
    assert result["auc_per_class"]["axion"] == pytest.approx(skm.roc_auc_score(y == 2, proba[:, 2]))
    assert result["confusion_matrix"] == skm.confusion_matrix(y, y_pred).tolist()
    assert not {"tpr0", "tpr1", "tpr10", "pr_auc"} & set(result)


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_two_classes_adds_lens_finding_scores(seed):
    y, proba = multiclass_case(seed, k=2, n=120, weights=(0.85, 0.15))
    result = dm.classification_metrics(y, proba, ["non-lens", "lens"])
    assert result["pr_auc"] == pytest.approx(skm.average_precision_score(y, proba[:, 1]))
    fpr, tpr, _ = skm.roc_curve(y, proba[:, 1], drop_intermediate=False)
    n_neg = int(np.sum(y == 0))
    # the challenge's TPR_n: fewer than n false positives (TPR0: none)
    for n, most_fps in ((0, 0), (10, 9)):
        expected = tpr[np.round(fpr * n_neg) <= most_fps].max()
        assert result[f"tpr{n}"] == pytest.approx(expected)
    assert result["tpr_at_fpr_1e-03"] == pytest.approx(tpr[fpr <= 1e-3].max())


def test_classification_metrics_absent_class_is_null_in_json():
    y, proba = multiclass_case(seed=7, k=3, n=60)
    y[y == 1] = 2
    result = dm.classification_metrics(y, proba, ["a", "b", "c"])
    assert result["auc_per_class"]["b"] is None
    assert '"b": null' in json.dumps(result, allow_nan=False)
    expected = np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in (0, 2)])
    assert result["macro_auc"] == pytest.approx(expected)


# ------------------------------------------------------------------------------- validation


GOOD_Y = np.array([0, 1, 2, 1])
GOOD_P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])


@pytest.mark.parametrize(
    ("y", "proba", "message"),
    [
        (GOOD_Y[:3], GOOD_P, "3 labels"),
        (GOOD_Y, GOOD_P[:, :1], "at least 2 class columns"),
        (GOOD_Y, GOOD_P[0], "2-D"),
        (np.array([0, 1, 3, 1]), GOOD_P, "label 3 but there are only 3 classes"),
        (np.array([0, -1, 2, 1]), GOOD_P, "negative"),
        (np.array([0, 1.5, 2, 1]), GOOD_P, "integer"),
        (np.array(["a", "b", "c", "d"]), GOOD_P, "integer"),
        (GOOD_Y, np.where(GOOD_P == 0.8, np.nan, GOOD_P), "row 1 holds a non-finite"),
        (GOOD_Y, GOOD_P * 2, r"\[0, 1\]"),
        (GOOD_Y, GOOD_P * 0.9, "sum to 1"),
        (np.array([], int), np.empty((0, 3)), "empty"),
    ],
)
def test_multiclass_input_validation(y, proba, message):
    with pytest.raises(ValueError, match=message):
        dm.macro_auc_ovr(y, proba)


@pytest.mark.parametrize(
    ("y", "score", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0 and 1"),
        ([0, 1], [0.1, 0.2, 0.3], "3 entries but the labels have 2"),
        ([0, 1], [0.1, np.inf], "non-finite value at index 1"),
        ([1, 1], [0.1, 0.2], "only positives"),
        ([0, 0], [0.1, 0.2], "only negatives"),
        ([[0, 1]], [[0.1, 0.2]], "one-dimensional"),
    ],
)
def test_binary_input_validation(y, score, message):
    with pytest.raises(ValueError, match=message):
        dm.roc_curve_binary(y, score)


def test_prediction_and_name_validation():
    with pytest.raises(ValueError, match="y_pred has 2"):
        dm.confusion_matrix([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match="y_pred holds label 2"):
        dm.precision_recall_f1([0, 1], [0, 2], 2)
    with pytest.raises(ValueError, match="n_classes must be an integer"):
        dm.confusion_matrix([0, 1], [0, 1], 2.0)
    with pytest.raises(ValueError, match="2 class names"):
        dm.classification_metrics(GOOD_Y, GOOD_P, ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        dm.classification_metrics(GOOD_Y, GOOD_P, ["a", "b", "a"])
    with pytest.raises(ValueError, match="at least two classes"):
        dm.classification_metrics(np.zeros(4, int), GOOD_P, ["a", "b", "c"])
