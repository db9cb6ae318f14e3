"""Bootstrap intervals, warnings, metrics against the truth and undetectable lenses, checked
against scikit-learn, explicit resamples and hand counts."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from darklens.evaluate.metrics import challenge_tpr, classification_metrics, tpr_at_fpr
from darklens.evaluate.science import (
    TruthSpec,
    _Ranked,
    _resampled_scores,
    _stratified_weights,
    add_science_metrics,
    bootstrap_intervals,
    evaluation_warnings,
    metrics_vs_truth,
    undetectable_summary,
    wilson_interval,
)

NAMES = ["non_lens", "lens"]


def lens_case(seed: int, n: int = 400, share: float = 0.3, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < share).astype(int)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    if ties:
        score = np.round(score, 2)
    return y, np.column_stack([1 - score, score])


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_scores_of_a_resample_equal_the_metrics_of_its_explicit_copy(ties):
    """One bootstrap resample scored with counts as weights = the same resample built
    explicitly (images repeated) and scored by scikit-learn and our challenge TPRs."""
    y, proba = lens_case(1, ties=ties)
    rng = np.random.default_rng(3)
    weights = _stratified_weights(y, 4, rng)
    assert np.array_equal(weights[:, y == 1].sum(1), np.full(4, (y == 1).sum()))  # stratified
    ranked = {k: _Ranked.of(y == k, proba[:, k]) for k in (0, 1)}
    correct = np.argmax(proba, axis=1) == y
    scores = _resampled_scores(y, proba, correct, weights, ranked)
    for b in range(4):
        repeat = np.repeat(np.arange(y.size), weights[b].astype(int))
        yb, sb = y[repeat], proba[repeat, 1]
        assert scores["auc"][b] == pytest.approx(skm.roc_auc_score(yb, sb))
        assert scores["tpr0"][b] == pytest.approx(challenge_tpr(yb, sb, 0))
        assert scores["tpr10"][b] == pytest.approx(challenge_tpr(yb, sb, 10))
        assert scores["tpr_at_fpr_1e-03"][b] == pytest.approx(tpr_at_fpr(yb, sb, 1e-3))
        assert scores["accuracy"][b] == pytest.approx(np.mean(correct[repeat]))


def test_bootstrap_intervals_hold_the_estimate_and_shrink_with_more_data():
    small, large = lens_case(2, n=200), lens_case(2, n=5000)
    widths = []
    for y, proba in (small, large):
        result = bootstrap_intervals(y, proba, NAMES, n_resamples=300, seed=1)
        low, high = result["intervals"]["auc"]
        assert low <= skm.roc_auc_score(y, proba[:, 1]) <= high
        widths.append(high - low)
        again = bootstrap_intervals(y, proba, NAMES, n_resamples=300, seed=1)
        assert again == result  # reproducible
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(n)
    y, proba = lens_case(4, n=300)
    multi = bootstrap_intervals(
        np.r_[y, np.full(50, 2)],
        np.vstack([np.c_[proba * 0.9, np.full(300, 0.1)], np.tile([0.1, 0.1, 0.8], (50, 1))]),
        ["a", "b", "c"],
        n_resamples=50,
    )
    assert {"accuracy", "macro_auc", "auc_per_class"} <= set(multi["intervals"])
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_intervals(y, proba, NAMES, n_resamples=5)


def test_warnings_name_what_a_test_set_cannot_show():
    y, proba = lens_case(5, n=60)
    found = evaluation_warnings(y, proba, NAMES)
    assert any("only 60 test images" in w for w in found)
    assert any("TPR at FPR 1e-04" in w for w in found)
    constant = np.tile([0.3, 0.7], (60, 1))
    assert any("constant classifier" in w for w in evaluation_warnings(y, constant, NAMES))
    big_y, big_proba = lens_case(5, n=30_000)
    assert not any(
        "constant" in w or "only" in w for w in evaluation_warnings(big_y, big_proba, NAMES)
    )


def test_wilson_interval_matches_the_published_example():
    """8 successes in 10 trials: 95 % Wilson interval 0.490–0.943 (Newcombe 1998, Table I)."""
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert np.isnan(wilson_interval(0, 0)).all()


def test_metrics_vs_truth_by_hand_and_against_scikit_learn():
    y, proba = lens_case(6, n=600)
    rng = np.random.default_rng(0)
    theta = np.where(y == 1, rng.uniform(0.3, 2.0, y.size), np.nan)
    spec = TruthSpec("theta_e_arcsec", "lens", "θ_E")
    result = metrics_vs_truth(y, proba, NAMES, {"theta_e_arcsec": theta}, [spec], threshold=0.5)
    bins = result["theta_e_arcsec"]["bins"]
    assert sum(b["n"] for b in bins) == (y == 1).sum()
    for b in bins:
        inside = (y == 1) & (theta >= b["low"]) & (theta <= b["high"])
        inside &= (theta < b["high"]) | (b is bins[-1])
        members = proba[inside, 1]
        assert b["n"] == inside.sum()
        assert b["completeness"] == pytest.approx(np.mean(members > 0.5))
        both = np.r_[np.ones(members.size), np.zeros((y == 0).sum())]
        assert b["auc"] == pytest.approx(skm.roc_auc_score(both, np.r_[members, proba[y == 0, 1]]))
        low, high = b["completeness_interval"]
        assert low <= b["completeness"] <= high
    # columns absent from the truth, or classes not in the data, are skipped
    assert metrics_vs_truth(y, proba, NAMES, {}, [spec]) == {}
    with pytest.raises(ValueError, match="one value per image"):
        metrics_vs_truth(y, proba, NAMES, {"theta_e_arcsec": theta[:5]}, [spec])


def test_undetectable_lenses_are_reported_apart():
    y, proba = lens_case(7, n=300)
    hidden = (y == 0) & (np.arange(y.size) % 10 == 0)
    proba[hidden] = [0.2, 0.8]  # they look like lenses
    summary = undetectable_summary(y, proba, NAMES, hidden, threshold=0.5)
    assert summary["n"] == hidden.sum() and summary["share_called_lens"] == 1.0
    rest = classification_metrics(y[~hidden], proba[~hidden], NAMES, threshold=0.5)
    assert summary["without_them"]["tpr10"] == rest["tpr10"]
    assert summary["without_them"]["auc_per_class"] == rest["auc_per_class"]["lens"]
    assert undetectable_summary(y, proba, NAMES, np.zeros(y.size, bool)) is None
    with pytest.raises(ValueError, match="first class"):
        undetectable_summary(y, proba, NAMES, y == 1)
    metrics = add_science_metrics(
        classification_metrics(y, proba, NAMES), y, proba, NAMES, undetectable=hidden,
        n_resamples=20,
    )  # fmt: skip
    assert {"uncertainty", "warnings", "undetectable_lenses"} <= set(metrics)
