"""Training on images simulated on the fly: fixed evaluation sets, batches that depend only on
(seed, epoch, step), resume equal to an uninterrupted run, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.train import TrainConfig, train
from darklens.train.data import batch_plan
from darklens.train.onthefly import EVAL_FILE, SimulatedSplit

SIM = {
    "preset": "model_ii",
    "overrides": {"instrument.num_pix": 16},
    "steps_per_epoch": 3,
    "eval_images": 12,
}
CONFIG = TrainConfig(model="deeplense_cnn", batch_size=6, epochs=2, seed=4, simulate=SIM)


def test_batches_depend_only_on_seed_epoch_and_step():
    split = SimulatedSplit(CONFIG, torch.device("cpu"))
    plan = batch_plan(np.arange(len(split)), CONFIG.batch_size)
    first = list(split.batches(plan, epoch=1))
    again = list(split.batches(plan[:2], epoch=1))
    assert len(first) == 3 and first[0][0][0].shape == (6, 1, 16, 16)
    for (x, y), (x2, y2) in zip(first[:2], again, strict=True):
        assert torch.equal(x[0], x2[0]) and torch.equal(y, y2)
    other_epoch = next(split.batches(plan, epoch=2))
    assert not torch.equal(other_epoch[0][0], first[0][0][0])
    reseeded = SimulatedSplit(TrainConfig(**{**CONFIG.to_dict(), "seed": 5}), torch.device("cpu"))
    assert not torch.equal(next(reseeded.batches(plan, epoch=1))[0][0], first[0][0][0])
    assert sorted(np.bincount(split.labels)) == [6, 6, 6]  # classes balanced


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    stopped = train(CONFIG, None, tmp_path / "a", should_stop=lambda row: True)
    assert stopped.epochs_completed == 1
    resumed = train(CONFIG, None, tmp_path / "a", resume=True)
    straight = train(CONFIG, None, tmp_path / "b")
    assert resumed.epochs_completed == straight.epochs_completed == 2
    keys = ("train_loss", "train_acc", "val_loss", "val_auc", "lr")
    assert [[r[k] for k in keys] for r in resumed.history] == [
        [r[k] for k in keys] for r in straight.history
    ]
    a, b = (
        load_file(tmp_path / "a" / "last.safetensors"),
        load_file(tmp_path / "b" / "last.safetensors"),
    )
    assert all(torch.equal(a[name], b[name]) for name in a)
    with LensDataset(tmp_path / "a" / EVAL_FILE) as eval_set:
        assert len(eval_set.split_indices("train")) == 0
        assert len(eval_set.split_indices("val")) == len(eval_set.split_indices("test")) == 12
        assert eval_set.manifest["seed"] != CONFIG.seed  # apart from the training images


def test_cli_trains_on_the_fly_and_refuses_both_sources(tmp_path):
    args = ["train", "--out", str(tmp_path / "run"), "--simulate", "model_ii"]
    args += ["--sim-set", "instrument.num_pix=16", "--model", "deeplense_cnn", "--epochs", "1"]
    args += ["--batch-size", "4", "--set", "simulate.steps_per_epoch=2"]
    args += ["--set", "simulate.eval_images=8", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "best.safetensors").is_file()
    both = CliRunner().invoke(app, [*args[:5], "--data", str(tmp_path / "x.h5"), "--quiet"])
    assert both.exit_code == 2 and "not both" in both.output
    with pytest.raises(ConfigError, match="not both"):
        TrainConfig(data="x.h5", simulate={"preset": "model_ii"})
