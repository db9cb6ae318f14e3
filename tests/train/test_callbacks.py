"""Training hooks and the monitored validation metric: what selects ``best``, what callbacks see."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from darklens import runs
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.runs import load_checkpoint
from darklens.train import TrainConfig, train
from darklens.train.callbacks import Callback, history_columns
from darklens.train.trainer import RunProgress, build_optimizer
from tests.helpers import make_lens_dataset

FAST = {"model": "deeplense_cnn", "batch_size": 8, "seed": 0}


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_train_start(self, epochs, resumed_after):
        self.calls.append(("start", epochs, resumed_after))

    def on_epoch_start(self, epoch, steps):
        self.calls.append(("epoch_start", epoch))

    def on_epoch_end(self, row, is_best):
        self.calls.append(("epoch_end", int(row["epoch"]), is_best))

    def on_train_end(self):
        self.calls.append(("end",))


def test_hooks_are_called_in_order_and_resume_says_where(toy_h5: Path, tmp_path: Path):
    seen = Recorder()
    train(TrainConfig(epochs=2, **FAST), toy_h5, tmp_path / "run", callbacks=[seen])
    kinds = [c[0] for c in seen.calls]
    assert kinds == ["start", "epoch_start", "epoch_end", "epoch_start", "epoch_end", "end"]
    assert seen.calls[0] == ("start", 2, 0) and seen.calls[2][2] is True  # epoch 1 is best
    again = Recorder()
    train(TrainConfig(epochs=3, **FAST), toy_h5, tmp_path / "run", resume=True, callbacks=[again])
    assert again.calls[0] == ("start", 3, 2) and again.calls[1] == ("epoch_start", 2)


def test_monitor_val_loss_selects_the_lowest_loss_epoch(toy_h5: Path, tmp_path: Path):
    config = TrainConfig(epochs=4, lr=3e-3, monitor="val_loss", **FAST)
    result = train(config, toy_h5, tmp_path / "run")
    losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert result.monitor == "val_loss" and result.best_value == min(losses)
    _, meta = load_checkpoint(tmp_path / "run")
    assert meta["epoch"] == result.best_epoch and meta["monitor"] == "val_loss"
    assert meta["val_metrics"]["loss"] == pytest.approx(min(losses))


def test_two_class_runs_record_and_can_monitor_tpr_at_target_fpr(tmp_path: Path):
    data = make_lens_dataset(tmp_path / "lens.h5")
    config = TrainConfig(epochs=3, target_fpr=0.1, monitor="val_tpr_at_fpr", **FAST)
    result = train(config, data, tmp_path / "run")
    tprs = [row["val_tpr_at_fpr"] for row in result.history]
    assert all(0.0 <= t <= 1.0 for t in tprs)
    assert result.best_epoch == 1 + tprs.index(max(tprs))  # first of the best on ties
    with open(tmp_path / "run" / "history.csv") as handle:
        header = next(csv.reader(handle))
    assert header[-2:] == ["val_tpr_at_fpr", "val_pauc"]
    assert header[:6] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_auc"]
    _, meta = load_checkpoint(tmp_path / "run")
    assert meta["val_metrics"]["tpr_at_fpr"] == pytest.approx(max(tprs))


def test_two_class_runs_can_monitor_the_partial_auc(tmp_path: Path):
    """val_pauc is scikit-learn's max_fpr=0.1 AUC of the validation lens scores; the best
    checkpoint is the epoch that maximises it and predicts it again."""
    data = make_lens_dataset(tmp_path / "lens.h5")
    result = train(TrainConfig(epochs=3, monitor="val_pauc", **FAST), data, tmp_path / "run")
    paucs = [row["val_pauc"] for row in result.history]
    assert result.best_epoch == 1 + paucs.index(max(paucs))
    with LensDataset(data) as dataset:
        val = dataset.split_indices("val")
        images, labels = dataset.images(val), dataset.labels[val]
    proba = Predictor.from_checkpoint(tmp_path / "run", device="cpu").predict_proba(images)
    expected = roc_auc_score(labels, proba[:, 1], max_fpr=0.1)
    assert max(paucs) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("monitor", ["val_tpr_at_fpr", "val_pauc"])
def test_low_fpr_monitors_need_two_classes(toy_h5: Path, tmp_path: Path, monitor: str):
    with pytest.raises(ConfigError, match="two classes"):
        train(TrainConfig(epochs=1, monitor=monitor, **FAST), toy_h5, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_states_from_before_monitor_resume(toy_h5: Path, tmp_path: Path):
    """A resume state written when the best val AUC was stored as ``best_auc`` still resumes."""
    run = tmp_path / "run"
    train(TrainConfig(epochs=1, **FAST), toy_h5, run)
    state = runs.load_train_state(run / runs.STATE)
    progress = dict(state.progress)
    progress["best_auc"] = progress.pop("best_score")
    state.progress = progress
    model, _ = load_checkpoint(run, "last")
    optimizer = build_optimizer(model, TrainConfig(**FAST))
    optimizer.load_state_dict(state.optimizer)
    runs.save_train_state(run / runs.STATE, model, optimizer, state.json_state())
    assert "best_auc" in json.loads((run / "last_state.json").read_text())["progress"]
    result = train(TrainConfig(epochs=2, **FAST), toy_h5, run, resume=True)
    assert result.epochs_completed == 2 and math.isfinite(result.best_val_auc)
    assert RunProgress.from_json(progress).best_score == progress["best_auc"]


def test_history_columns_keep_the_base_order_then_new_metrics():
    rows = [{"epoch": 1, "val_auc": 0.5, "val_tpr_at_fpr": 0.1, "lr": 1e-3}]
    columns = history_columns(rows)
    assert columns[:9] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_auc",
                           "lr", "seconds", "images_per_s"]  # fmt: skip
    assert columns[9:] == ["val_tpr_at_fpr"]
