"""Class-imbalance options of training: class weights, balanced sampling, focal loss, threshold."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_curve
from sklearn.utils.class_weight import compute_class_weight

from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.train import TrainConfig, train
from darklens.train import trainer as trainer_module
from darklens.train.data import epoch_order
from darklens.train.loop import FocalLoss, focal_loss
from darklens.train.trainer import class_weights
from tests.helpers import LENS_SPLIT_SIZES as SPLIT_SIZES
from tests.helpers import make_lens_dataset

CLASSES = ("non_lens", "lens")
FAST = {"model": "deeplense_cnn", "batch_size": 8, "seed": 0, "epochs": 1}


@pytest.fixture(scope="module")
def lens_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lens_dataset(tmp_path_factory.mktemp("lens") / "lens.h5")


def _spy_training(monkeypatch) -> list[dict]:
    """Record the loss function and the labels of every batch the training loop receives."""
    calls: list[dict] = []
    original = trainer_module.train_one_epoch

    def spy(model, batches, optimizer, loss_fn, *args, **kwargs):
        record = {"loss_fn": loss_fn, "labels": []}
        calls.append(record)

        def watched():
            for x, y in batches:
                record["labels"].append(y.clone())
                yield x, y

        return original(model, watched(), optimizer, loss_fn, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_one_epoch", spy)
    return calls


# -- class weights -------------------------------------------------------------------------------
def test_balanced_weights_are_n_over_two_n_c_for_two_classes():
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, list(CLASSES)).numpy()
    np.testing.assert_allclose(weights, [100 / (2 * 90), 100 / (2 * 10)], rtol=1e-6)
    reference = compute_class_weight("balanced", classes=np.arange(2), y=labels)
    np.testing.assert_allclose(weights, reference, rtol=1e-6)


@pytest.mark.parametrize("loss", ["ce", "focal"])
def test_training_uses_the_balanced_weights_of_the_train_split(
    lens_h5: Path, tmp_path: Path, monkeypatch, loss: str
):
    calls = _spy_training(monkeypatch)
    config = TrainConfig(class_weighting="balanced", loss=loss, **FAST)
    train(config, lens_h5, tmp_path / "run")
    n_non, n_lens = SPLIT_SIZES["train"]
    expected = [(n_non + n_lens) / (2 * n_non), (n_non + n_lens) / (2 * n_lens)]
    loss_fn = calls[0]["loss_fn"]
    assert isinstance(loss_fn, FocalLoss if loss == "focal" else torch.nn.CrossEntropyLoss)
    np.testing.assert_allclose(loss_fn.weight.numpy(), expected, rtol=1e-6)
    unweighted = _spy_training(monkeypatch)
    train(TrainConfig(**FAST), lens_h5, tmp_path / "plain")
    assert unweighted[0]["loss_fn"].weight is None


# -- balanced sampling ---------------------------------------------------------------------------
def test_balanced_order_draws_every_class_equally_often():
    labels = np.array([0] * 950 + [1] * 40 + [2] * 10)
    drawn = np.concatenate([labels[epoch_order(labels, 7, e, balanced=True)] for e in range(30)])
    shares = np.bincount(drawn, minlength=3) / drawn.size
    # 30 000 draws: each share has a binomial standard deviation of about 0.003
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.015)
    plain = labels[epoch_order(labels, 7, 0, balanced=False)]
    assert np.bincount(plain).tolist() == [950, 40, 10]


def test_balanced_order_depends_only_on_seed_and_epoch():
    labels = np.array([0] * 30 + [1] * 5)
    forwards = [epoch_order(labels, 3, e, balanced=True) for e in range(4)]
    backwards = [epoch_order(labels, 3, e, balanced=True) for e in reversed(range(4))][::-1]
    for a, b in zip(forwards, backwards, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(forwards[0], forwards[1])
    assert not np.array_equal(forwards[0], epoch_order(labels, 4, 0, balanced=True))


def test_training_with_balanced_sampling_sees_classes_equally(
    lens_h5: Path, tmp_path: Path, monkeypatch
):
    calls = _spy_training(monkeypatch)
    train(
        TrainConfig(balanced_sampling=True, **{**FAST, "epochs": 3}),
        lens_h5,
        tmp_path / "balanced",
    )
    seen = torch.cat([y for call in calls for y in call["labels"]]).numpy()
    assert seen.size == 3 * sum(SPLIT_SIZES["train"])
    # 180 draws at p = 0.5: standard deviation 0.037; the unbalanced share would be 0.2
    assert np.mean(seen == 1) == pytest.approx(0.5, abs=0.15)

    plain = _spy_training(monkeypatch)
    train(TrainConfig(**FAST), lens_h5, tmp_path / "plain")
    seen = torch.cat(plain[0]["labels"]).numpy()
    assert np.bincount(seen).tolist() == list(SPLIT_SIZES["train"])


def test_imbalance_options_resume_exactly(lens_h5: Path, tmp_path: Path):
    config = TrainConfig(
        balanced_sampling=True,
        class_weighting="balanced",
        loss="focal",
        focal_gamma=1.5,
        schedule="none",  # so that the 1-epoch run's learning rates are those of a 2-epoch run
        **{**FAST, "epochs": 2},
    )
    straight = train(config, lens_h5, tmp_path / "straight")
    train(dataclasses.replace(config, epochs=1), lens_h5, tmp_path / "resumed")
    resumed = train(config, lens_h5, tmp_path / "resumed", resume=True)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in straight.history]
    a = load_file(tmp_path / "straight" / "last.safetensors")
    b = load_file(tmp_path / "resumed" / "last.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)
    with pytest.raises(ConfigError, match="focal_gamma"):
        train(
            dataclasses.replace(config, focal_gamma=2.0),
            lens_h5,
            tmp_path / "resumed",
            resume=True,
        )


# -- focal loss ----------------------------------------------------------------------------------
LOGITS = np.array([[2.0, -1.0], [0.3, 0.1], [-0.5, 1.5], [4.0, 0.0], [0.0, 0.2]])
TARGETS = np.array([0, 1, 1, 1, 0])
WEIGHTS = np.array([0.6, 2.5])


def _focal_by_hand(gamma: float, weights: np.ndarray | None) -> float:
    total = norm = 0.0
    for logits, target in zip(LOGITS, TARGETS, strict=True):
        p = math.exp(logits[target]) / sum(math.exp(v) for v in logits)
        w = 1.0 if weights is None else weights[target]
        total += -w * (1 - p) ** gamma * math.log(p)
        norm += w
    return total / norm


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_loss_matches_the_hand_formula(gamma: float, weighted: bool):
    weights = torch.tensor(WEIGHTS) if weighted else None
    logits, targets = torch.tensor(LOGITS), torch.tensor(TARGETS)
    expected = _focal_by_hand(gamma, WEIGHTS if weighted else None)
    assert float(focal_loss(logits, targets, gamma, weights)) == pytest.approx(expected, rel=1e-6)
    module = FocalLoss(gamma, weights)
    assert float(module(logits, targets)) == pytest.approx(expected, rel=1e-6)


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_down_weights_easy_images():
    logits, targets = torch.tensor(LOGITS), torch.tensor(TARGETS)
    weights = torch.tensor(WEIGHTS, dtype=torch.float32)
    reference = torch.nn.CrossEntropyLoss(weight=weights)(logits.float(), targets)
    assert float(focal_loss(logits, targets, 0.0, weights)) == pytest.approx(float(reference))
    easy = torch.tensor([[6.0, -6.0]])  # p_true ~ 1: almost no focal loss left
    hard = torch.tensor([[-1.0, 1.0]])
    target = torch.tensor([0])
    ratio_easy = float(focal_loss(easy, target, 2.0)) / float(focal_loss(easy, target, 0.0))
    ratio_hard = float(focal_loss(hard, target, 2.0)) / float(focal_loss(hard, target, 0.0))
    assert ratio_easy < 1e-8 and ratio_hard > 0.7


def test_focal_loss_gradient_stays_finite_for_certain_predictions():
    logits = torch.tensor([[60.0, -60.0], [0.0, 1.0]], requires_grad=True)
    focal_loss(logits, torch.tensor([0, 1]), 0.5).backward()
    assert bool(torch.isfinite(logits.grad).all())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": "hinge"}, "loss must be one of ce, focal"),
        ({"loss": "focal", "label_smoothing": 0.1}, "label_smoothing applies to loss=ce only"),
        ({"focal_gamma": -1.0}, "focal_gamma must be >= 0"),
        ({"target_fpr": 0.0}, r"target_fpr .* must be in \(0, 1\)"),
        ({"target_fpr": 1.0}, r"target_fpr .* must be in \(0, 1\)"),
    ],
)
def test_bad_imbalance_settings_are_refused(changes: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(changes)


# -- decision threshold --------------------------------------------------------------------------
def _val_scores(run: Path, data: Path) -> tuple[np.ndarray, np.ndarray, Predictor]:
    predictor = Predictor.from_checkpoint(run)
    with LensDataset(data) as ds:
        index = ds.split_indices("val")
        return predictor.predict_proba(ds.images(index))[:, 1], ds.labels[index], predictor


@pytest.mark.parametrize("target_fpr", [0.05, 0.2])
def test_stored_threshold_gives_the_target_fpr_on_val(
    lens_h5: Path, tmp_path: Path, target_fpr: float
):
    run = tmp_path / "run"
    train(TrainConfig(target_fpr=target_fpr, **{**FAST, "epochs": 2}), lens_h5, run)
    for which in ("last", "best"):
        stored = json.loads((run / f"{which}.json").read_text())["decision_threshold"]
        assert stored["target_fpr"] == target_fpr and stored["positive_class"] == "lens"
        assert stored["split"] == "val"
        assert (stored["n_negative"], stored["n_positive"]) == SPLIT_SIZES["val"]
    score, labels, predictor = _val_scores(run, lens_h5)
    threshold = stored["value"]
    assert predictor.threshold_ == threshold
    fpr = np.mean(score[labels == 0] > threshold)
    tpr = np.mean(score[labels == 1] > threshold)
    assert fpr <= target_fpr
    assert fpr == pytest.approx(stored["fpr"]) and tpr == pytest.approx(stored["tpr"])
    # no lower threshold meets the target with a higher TPR (scikit-learn's ROC points)
    roc_fpr, roc_tpr, _ = roc_curve(labels, score, drop_intermediate=False)
    assert tpr == pytest.approx(roc_tpr[roc_fpr <= target_fpr + 1e-12].max())
    assert stored["allowed_false_positives"] == math.floor(target_fpr * SPLIT_SIZES["val"][0])


def test_three_class_runs_store_no_threshold(trained_run: Path):
    meta = json.loads((trained_run / "best.json").read_text())
    assert "decision_threshold" not in meta
    assert Predictor.from_checkpoint(trained_run).threshold_ is None
