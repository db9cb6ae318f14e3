"""Lens-finding evaluation: threshold choice, FP per lens, report extras, evaluate/predict CLI."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics as skm
import torch
from astropy.io import fits
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.evaluate import evaluate_predictions, write_report
from darklens.evaluate.metrics import (
    challenge_tpr,
    classification_metrics,
    fp_per_true_lens,
    lens_finding_at_threshold,
    threshold_for_fpr,
    tpr_at_fp,
    tpr_at_fpr,
)
from darklens.evaluate.report import hardest_lens_cases
from darklens.evaluate.run import evaluate_checkpoint
from darklens.predict import Predictor
from darklens.predict.batch import predict_files
from darklens.runs import load_checkpoint, save_checkpoint
from darklens.train import TrainConfig, train
from tests.helpers import make_lens_dataset

NAMES = ["non_lens", "lens"]
runner = CliRunner()


@pytest.fixture(scope="module")
def lens_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lens_dataset(tmp_path_factory.mktemp("lens") / "lens.h5", seed=1)


@pytest.fixture(scope="module")
def lens_run(lens_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "finder"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(
            model="deeplense_cnn",
            epochs=2,
            batch_size=8,
            seed=0,
            target_fpr=0.1,
            class_weighting="balanced",
        )
        train(config, lens_h5, run)
    finally:
        torch.set_num_threads(previous)
    return run


def _two_class_case(seed: int, n: int = 80, lens_share: float = 0.25, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < lens_share).astype(int)
    y[:2] = [0, 1]
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    if ties:
        score = np.round(score, 1)
    return y, np.column_stack([1 - score, score])


# -- metrics -------------------------------------------------------------------------------------
def test_tpr0_and_tpr10_by_hand():
    # ranked by score: L L N L L N N N N N N N N N N L N (L = lens, N = non-lens)
    order = "LLNLLNNNNNNNNNNLN"
    y = np.array([int(c == "L") for c in order])
    score = np.linspace(1.0, 0.2, y.size)
    assert tpr_at_fp(y, score, 0) == pytest.approx(2 / 5)
    assert tpr_at_fp(y, score, 1) == pytest.approx(4 / 5)
    assert tpr_at_fp(y, score, 10) == pytest.approx(4 / 5)  # the last lens comes after 11 FPs
    assert tpr_at_fp(y, score, 11) == pytest.approx(1.0)


def test_challenge_tprs_count_false_positives_as_metcalf_et_al_define_them():
    """TPR0 = highest TPR before the first false positive; TPR10 = with fewer than ten (Metcalf
    et al. 2019, Sect. 5). Hand-counted ranking, best score first (L lens, N non-lens):
    L L N L N N N N N N N N L N L L   -> 6 lenses, 10 non-lenses.
    Before the 1st N: 2 lenses. Before the 10th N (at rank 13, after 9 N): 4 lenses (ranks 1, 2,
    4, 13). The 10th N is at rank 14, so lenses 15 and 16 come only with 10 false positives."""
    order = "LLNLNNNNNNNNLNLL"
    y = np.array([int(c == "L") for c in order])
    score = np.linspace(1.0, 0.1, y.size)
    assert challenge_tpr(y, score, 0) == pytest.approx(2 / 6)
    assert challenge_tpr(y, score, 1) == pytest.approx(2 / 6)
    assert challenge_tpr(y, score, 2) == pytest.approx(3 / 6)
    assert challenge_tpr(y, score, 10) == pytest.approx(4 / 6)
    assert challenge_tpr(y, score, 11) == pytest.approx(1.0)
    assert tpr_at_fp(y, score, 10) == pytest.approx(1.0)  # "at most 10" is not the challenge's
    metrics = classification_metrics(y, np.column_stack([1 - score, score]), NAMES)
    assert metrics["tpr0"] == pytest.approx(2 / 6) and metrics["tpr10"] == pytest.approx(4 / 6)
    assert "tpr1" not in metrics
    # FPR 0.1 of 10 non-lenses allows one false positive: lenses at ranks 1, 2, 4
    assert tpr_at_fpr(y, score, 0.1) == pytest.approx(3 / 6)
    assert metrics["tpr_at_fpr_1e-03"] == pytest.approx(2 / 6)  # < 1/10: none allowed
    with pytest.raises(ValueError, match="non-negative"):
        challenge_tpr(y, score, -1)


def test_threshold_for_fpr_by_hand():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.95, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.05, 0.9, 0.65, 0.55, 0.1])
    choice = threshold_for_fpr(y, score, 0.2)  # 10 non-lenses: 2 false positives allowed
    assert choice.allowed_false_positives == 2
    # the third-highest non-lens scores 0.6; the next higher score is the lens at 0.65
    assert choice.threshold == pytest.approx(0.625)
    assert choice.fpr == pytest.approx(0.2) and choice.tpr == pytest.approx(0.5)
    strict = threshold_for_fpr(y, score, 0.05)  # no false positive allowed, no lens above 0.95
    assert strict.threshold == pytest.approx(0.95) and strict.fpr == 0.0
    assert strict.tpr == 0.0
    # every lens above the non-lenses: the cut sits in the gap, with no false positive at all
    easy = threshold_for_fpr(y, np.r_[score[:10] * 0.5, 0.8, 0.9, 0.85, 0.99], 0.2)
    assert easy.threshold == pytest.approx((0.475 + 0.8) / 2)
    assert easy.fpr == 0.0 and easy.tpr == 1.0 and easy.allowed_false_positives == 2
    # 0.29 * 100 is 28.999...96 in floating point: still 29 false positives allowed
    many = np.r_[np.zeros(100), np.ones(5)]
    assert threshold_for_fpr(many, np.linspace(0, 1, 105), 0.29).allowed_false_positives == 29


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [0.01, 0.1, 0.3])
def test_threshold_for_fpr_is_the_best_roc_point_within_the_target(seed: int, target: float):
    y, proba = _two_class_case(seed, n=150, ties=seed % 2 == 1)
    choice = threshold_for_fpr(y, proba[:, 1], target)
    called = proba[:, 1] > choice.threshold
    assert np.mean(called[y == 0]) == pytest.approx(choice.fpr) and choice.fpr <= target
    assert np.mean(called[y == 1]) == pytest.approx(choice.tpr)
    fpr, tpr, _ = skm.roc_curve(y, proba[:, 1], drop_intermediate=False)
    best_tpr = tpr[fpr <= target + 1e-12].max()
    assert choice.tpr == pytest.approx(best_tpr)
    assert choice.fpr == pytest.approx(fpr[np.isclose(tpr, best_tpr)].min())


@pytest.mark.parametrize("bad", [0, 1, -0.1, "0.1", True])
def test_threshold_for_fpr_rejects_bad_targets(bad):
    with pytest.raises(ValueError, match="target_fpr must be"):
        threshold_for_fpr([0, 1], [0.2, 0.8], bad)


def test_fp_per_lens_matches_counting_in_a_replicated_survey():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.3, 0.2, 0.85, 0.4, 0.3, 0.1, 0.05])
    threshold = 0.5  # TP = 2 of 4 lenses, FP = 1 of 5 non-lenses
    for copies in (1, 7, 250):  # a survey: the same non-lenses, `copies` times over
        survey_y = np.r_[y[:4], np.tile(y[4:], copies)]
        survey_score = np.r_[score[:4], np.tile(score[4:], copies)]
        called = survey_score > threshold
        counted = np.sum(called & (survey_y == 0)) / np.sum(called & (survey_y == 1))
        rate = 4 / survey_y.size
        result = lens_finding_at_threshold(y, score, threshold, lens_rate=rate)
        assert result["fp_per_lens"] == pytest.approx(counted)
        assert fp_per_true_lens(0.2, 0.5, rate) == pytest.approx(counted)
        survey_purity = np.sum(called & (survey_y == 1)) / np.sum(called)
        assert result["survey_precision"] == pytest.approx(survey_purity)
    assert fp_per_true_lens(0.01, 0.5, 1e-3) == pytest.approx(0.02 * 999)
    assert math.isinf(fp_per_true_lens(0.1, 0.0)) and math.isnan(fp_per_true_lens(0.0, 0.0))
    with pytest.raises(ValueError, match="lens_rate"):
        fp_per_true_lens(0.1, 0.5, 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_metrics_at_a_threshold_match_scikit_learn(seed: int):
    y, proba = _two_class_case(seed)
    threshold = 0.52
    metrics = classification_metrics(y, proba, NAMES, threshold=threshold, lens_rate=0.01)
    y_pred = (proba[:, 1] > threshold).astype(int)
    assert metrics["decision_threshold"] == threshold and metrics["lens_rate"] == 0.01
    assert metrics["precision_at_threshold"] == pytest.approx(skm.precision_score(y, y_pred))
    assert metrics["recall_at_threshold"] == pytest.approx(skm.recall_score(y, y_pred))
    assert metrics["confusion_matrix"] == skm.confusion_matrix(y, y_pred).tolist()
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    tn, fp, fn, tp = skm.confusion_matrix(y, y_pred).ravel()
    expected = (fp / (fp + tn)) / (tp / (tp + fn)) * 0.99 / 0.01
    assert metrics["fp_per_lens"] == pytest.approx(expected)
    default = classification_metrics(y, proba, NAMES)
    assert default["decision_threshold"] == 0.5
    assert default["confusion_matrix"] == skm.confusion_matrix(y, proba.argmax(1)).tolist()
    three = np.column_stack([proba * 0.5, np.full(len(y), 0.5)])
    with pytest.raises(ValueError, match="two-class scores only"):
        classification_metrics(np.r_[y[:-1], 2], three, ["a", "b", "c"], threshold=0.5)


# -- report --------------------------------------------------------------------------------------
def test_hardest_cases_rank_worst_first():
    y = np.array([0, 1, 0, 1, 0, 1, 0])
    score = np.array([0.9, 0.2, 0.1, 0.95, 0.6, 0.2, 0.6])
    top_non_lenses, bottom_lenses = hardest_lens_cases(y, score, n=3)
    assert top_non_lenses.tolist() == [0, 4, 6]
    assert bottom_lenses.tolist() == [1, 5, 3]


def test_two_class_report_has_threshold_scores_and_ranked_galleries(tmp_path: Path):
    y, proba = _two_class_case(5, n=40)
    images = np.random.default_rng(0).normal(size=(40, 1, 12, 12)).astype(np.float32)
    requested = []

    def reader(indices):
        requested.append(np.asarray(indices).tolist())
        return images[indices]

    metrics = classification_metrics(y, proba, NAMES, threshold=0.6)
    write_report(tmp_path, metrics, NAMES, y_true=y, proba=proba, images=reader, gallery_size=5)
    top_non_lenses, bottom_lenses = hardest_lens_cases(y, proba[:, 1], 5)
    assert requested == [top_non_lenses.tolist(), bottom_lenses.tolist()]
    for name in (
        "roc.png",
        "pr.png",
        "confusion.png",
        "gallery_top_nonlenses.png",
        "gallery_bottom_lenses.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "gallery_wrong.png").exists()
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Highest-scored non_lens (worst false positives)" in page
    assert "Lowest-scored lens (most easily missed)" in page
    assert "False positives per true lens in the survey" in page
    assert f"{metrics['precision_at_threshold']:.4f}" in page
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["decision_threshold"] == 0.6
    assert stored["confusion_matrix"] == skm.confusion_matrix(y, proba[:, 1] > 0.6).tolist()
    from PIL import Image

    with Image.open(tmp_path / "roc.png") as roc:
        assert roc.width > 2 * roc.height * 0.9  # two panels: linear and log FPR


def test_evaluate_predictions_passes_threshold_and_rate(tmp_path: Path):
    y, proba = _two_class_case(6)
    metrics = evaluate_predictions(y, proba, NAMES, tmp_path, threshold=0.7, lens_rate=0.05)
    assert metrics["decision_threshold"] == 0.7 and metrics["lens_rate"] == 0.05


# -- checkpoints: evaluate and predict -----------------------------------------------------------
def _stored_threshold(run: Path) -> float:
    return json.loads((run / "best.json").read_text())["decision_threshold"]["value"]


def _split(data: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with LensDataset(data) as ds:
        index = ds.split_indices(split)
        return index, ds.images(index), ds.labels[index]


def test_predictor_uses_the_stored_threshold(lens_run: Path, lens_h5: Path):
    _, images, _ = _split(lens_h5, "test")
    predictor = Predictor.from_checkpoint(lens_run)
    threshold = _stored_threshold(lens_run)
    assert predictor.threshold_ == threshold and predictor.threshold is None
    proba = predictor.predict_proba(images)
    np.testing.assert_array_equal(predictor.predict(images), proba[:, 1] > threshold)
    np.testing.assert_array_equal(predictor.predict_labels(images)[proba[:, 1] > threshold], "lens")
    strict = Predictor.from_checkpoint(lens_run, threshold=0.999)
    assert strict.threshold_ == 0.999
    np.testing.assert_array_equal(strict.predict_proba(images), proba)
    np.testing.assert_array_equal(strict.predict(images), proba[:, 1] > 0.999)
    with pytest.raises(ValueError, match=r"probability in \[0, 1\]"):
        Predictor.from_checkpoint(lens_run, threshold=1.5)


def test_threshold_is_refused_for_three_class_models(trained_run: Path):
    with pytest.raises(ValueError, match="two-class .* only; this one has 3 classes"):
        Predictor.from_checkpoint(trained_run, threshold=0.5)


def test_evaluate_cli_writes_lens_finding_metrics_plots_and_galleries(
    lens_run: Path, lens_h5: Path, tmp_path: Path
):
    out = tmp_path / "eval"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "-c",
            str(lens_run),
            "--data",
            str(lens_h5),
            "--out",
            str(out),
            "--lens-rate",
            "0.01",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "survey FP per true lens" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    threshold = _stored_threshold(lens_run)
    assert metrics["decision_threshold"] == threshold
    assert metrics["evaluation"]["decision_threshold_source"] == "checkpoint"
    assert metrics["lens_rate"] == 0.01
    index, images, labels = _split(lens_h5, "test")
    score = Predictor.from_checkpoint(lens_run).predict_proba(images)[:, 1]
    y_pred = (score > threshold).astype(int)
    assert metrics["precision_at_threshold"] == pytest.approx(
        skm.precision_score(labels, y_pred, zero_division=0)
    )
    assert metrics["recall_at_threshold"] == pytest.approx(skm.recall_score(labels, y_pred))
    fpr = np.mean(y_pred[labels == 0])
    tpr = np.mean(y_pred[labels == 1])
    if tpr > 0:
        assert metrics["fp_per_lens"] == pytest.approx(fpr / tpr * 0.99 / 0.01)
    for name in ("roc.png", "pr.png", "gallery_top_nonlenses.png", "gallery_bottom_lenses.png"):
        assert (out / name).is_file(), name
    with (out / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == index.tolist()
    assert [r["predicted"] for r in rows] == [NAMES[k] for k in y_pred]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Hardest cases, ranked by lens score" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) >= 5


def test_evaluate_threshold_override_and_ensembles(lens_run: Path, lens_h5: Path, tmp_path: Path):
    given = evaluate_checkpoint(lens_run, lens_h5, tmp_path / "given", threshold=0.3)
    assert given["decision_threshold"] == 0.3
    assert given["evaluation"]["decision_threshold_source"] == "given"
    model, meta = load_checkpoint(lens_run)
    save_checkpoint(tmp_path / "copy" / "best", model, meta)
    both = evaluate_checkpoint([lens_run, tmp_path / "copy"], lens_h5, tmp_path / "ensemble")
    assert both["decision_threshold"] == 0.5
    assert both["evaluation"]["decision_threshold_source"].startswith("argmax")
    with pytest.raises(ValueError, match="lens_rate"):
        evaluate_checkpoint(lens_run, lens_h5, tmp_path / "bad", lens_rate=2.0)


def test_predict_rank_sorts_by_lens_score(lens_run: Path, lens_h5: Path, tmp_path: Path):
    _, images, _ = _split(lens_h5, "test")
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k, image in enumerate(images):
        np.save(folder / f"cutout_{k:02d}.npy", image)
    out = tmp_path / "ranked.csv"
    result = runner.invoke(
        app, ["predict", "-c", str(lens_run), str(folder), "--rank", "-o", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["rank", "id", "p_non_lens", "p_lens", "predicted", "confidence"]
    predictor = Predictor.from_checkpoint(lens_run)
    score = predictor.predict_proba(images)[:, 1]
    expected = np.argsort(-score, kind="stable")
    assert [r["id"] for r in rows] == [str(folder / f"cutout_{k:02d}.npy") for k in expected]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(images) + 1))
    np.testing.assert_allclose([float(r["p_lens"]) for r in rows], score[expected], rtol=1e-9)
    assert [r["predicted"] for r in rows] == [
        "lens" if s > predictor.threshold_ else "non_lens" for s in score[expected]
    ]


def test_predict_rank_needs_two_classes(trained_run: Path, tmp_path: Path):
    np.save(tmp_path / "one.npy", np.zeros((32, 32), np.float32))
    result = runner.invoke(
        app,
        [
            "predict",
            "-c",
            str(trained_run),
            str(tmp_path / "one.npy"),
            "--rank",
            "-o",
            str(tmp_path / "out.csv"),
        ],
    )
    assert result.exit_code == 2 and "needs a two-class checkpoint" in result.output
    assert not (tmp_path / "out.csv").exists()


def test_predict_reads_a_bologna_challenge_folder(lens_run: Path, lens_h5: Path, tmp_path: Path):
    _, images, _ = _split(lens_h5, "test")
    band1 = tmp_path / "challenge" / "Public" / "Band1"
    band1.mkdir(parents=True)
    for k, image in enumerate(images[:6]):
        fits.PrimaryHDU(image[0]).writeto(band1 / f"imageEUC_VIS-{200000 + k}.fits")
    rows = predict_files(lens_run, tmp_path / "challenge", tmp_path / "out.csv", rank=True)
    assert rows == 6
    with (tmp_path / "out.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    score = Predictor.from_checkpoint(lens_run).predict_proba(images[:6])[:, 1]
    expected = np.argsort(-score, kind="stable")
    assert [r["id"] for r in table] == [str(200000 + k) for k in expected]


def test_predict_rank_to_parquet_has_an_integer_rank(lens_run: Path, lens_h5: Path, tmp_path: Path):
    import pyarrow.parquet as pq  # a declared dependency: never skipped
    _, images, _ = _split(lens_h5, "test")
    np.save(tmp_path / "stack.npy", images[:5, 0])
    predict_files(lens_run, tmp_path / "stack.npy", tmp_path / "out.parquet", rank=True)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names[0] == "rank" and str(table.schema.field("rank").type) == "int64"
    assert table.column("rank").to_pylist() == [1, 2, 3, 4, 5]
    scores = table.column("p_lens").to_pylist()
    assert scores == sorted(scores, reverse=True)


def test_prediction_csv_keeps_scores_near_one_apart(tmp_path):
    """Lens scores of confident models crowd near 1; the CSV must not round them into ties."""
    import csv

    from darklens.predict.batch import PredictionWriter

    scores = np.array([1 - 1e-12, 1 - 3e-12, 0.5])
    proba = np.stack([1 - scores, scores], axis=1)
    with PredictionWriter(tmp_path / "p.csv", ["non_lens", "lens"]) as writer:
        writer.write(["a", "b", "c"], proba)
    with open(tmp_path / "p.csv", newline="") as handle:
        read = [float(row["p_lens"]) for row in csv.DictReader(handle)]
    assert read == scores.tolist()
