"""Unsupervised domain adaptation: AdaBN changes only BatchNorm buffers, DANN's gradient reversal
flips the gradient's sign, and tiny end-to-end runs of both (library and CLI)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.h5 import DatasetWriter
from darklens.models import create_model
from darklens.runs import load_checkpoint
from darklens.train import TrainConfig, train
from darklens.train.adaptation import (
    DomainAdversarial,
    adapt_batch_norm,
    batch_norm_layers,
    dann_weight,
    feature_count,
    grad_reverse,
)
from tests.conftest import make_toy_dataset


@pytest.fixture(scope="module")
def target_h5(tmp_path_factory) -> Path:
    """A shifted domain: the toy images 3× brighter with an offset, 24 x 24 pixels."""
    path = make_toy_dataset(tmp_path_factory.mktemp("target") / "raw.h5", per_class=8, size=24)
    from darklens.data.h5 import LensDataset

    with LensDataset(path) as ds:
        images, labels, n = ds.images() * 3 + 1, ds.labels, len(ds)
    out = path.with_name("target.h5")
    with DatasetWriter(out, n, images.shape[1:], ("no_sub", "cdm", "axion")) as writer:
        writer.write(0, images, labels, np.zeros(n, dtype=np.uint8))
    return out


def test_adabn_changes_only_batch_norm_buffers():
    torch.manual_seed(0)
    model = create_model("deeplense_cnn", in_chans=1, num_classes=3, img_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [torch.randn(8, 1, 32, 32) * 2 + 3 for _ in range(3)]
    adapted = adapt_batch_norm(model, iter(batches))
    layers = batch_norm_layers(adapted)
    statistics = ("running_mean", "running_var")
    buffers = {f"{n}.{b}" for n, m in adapted.named_modules() if m in layers for b in statistics}
    changed = {
        k
        for k, v in adapted.state_dict().items()
        if not torch.equal(v, before[k]) and not k.endswith("num_batches_tracked")
    }
    assert changed == buffers  # every BN statistic moved, nothing else
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # original kept
    # the first layer's statistics are the target's (a cumulative mean over all batches)
    first = torch.cat([model[0](b) for b in batches]).detach()
    np.testing.assert_allclose(
        adapted[1].running_mean.numpy(), first.mean(dim=(0, 2, 3)).numpy(), rtol=1e-4, atol=1e-5
    )
    assert adapted[1].momentum == model[1].momentum and not adapted.training


def test_gradient_reversal_flips_the_gradient_sign():
    x = torch.randn(5, 3, requires_grad=True)
    weights = torch.randn(5, 3)
    (grad_reverse(x, 0.7) * weights).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * weights)
    assert torch.equal(grad_reverse(x, 0.7), x)  # identity forward
    assert dann_weight(0.0, 1.0) == 0.0 and dann_weight(1.0, 2.0) == pytest.approx(2 * math.tanh(5))


def test_domain_head_sees_the_classifier_features_and_trains_against_them():
    torch.manual_seed(0)
    model = create_model("deeplense_cnn", in_chans=1, num_classes=3, img_size=32)
    n = feature_count(model, "25", torch.zeros(2, 1, 32, 32))
    assert n == 512
    wrapper = DomainAdversarial(model, "25", n, hidden=16)
    logits = wrapper(torch.randn(4, 1, 32, 32))
    assert logits.shape == (4, 3) and wrapper.features.shape == (4, 512)
    domain = wrapper.domain_logits(wrapper.features, 1.0)
    domain.sum().backward()
    # the head descends on its loss; the features' producer gets the reversed gradient
    head_grad = wrapper.domain_head[0].weight.grad
    assert head_grad is not None and head_grad.abs().sum() > 0
    assert model[22].weight.grad is not None


@pytest.mark.parametrize("method", ["adabn", "dann"])
def test_tiny_adapted_run_writes_adapted_checkpoints(toy_h5, target_h5, tmp_path, method):
    config = TrainConfig(model="deeplense_cnn", epochs=2, batch_size=8, seed=0,
                         adapt_to=str(target_h5), adaptation=method)  # fmt: skip
    result = train(config, toy_h5, tmp_path / "run")
    assert result.epochs_completed == 2
    model, meta = load_checkpoint(result.run_dir, "last")
    assert meta["adaptation"] == {"method": method, "target": str(target_h5), "n_target_images": 24}
    plain = train(TrainConfig(model="deeplense_cnn", epochs=2, batch_size=8, seed=0), toy_h5,
                  tmp_path / "plain")  # fmt: skip
    plain_model, _ = load_checkpoint(plain.run_dir, "last")
    weights, plain_weights = model.state_dict(), plain_model.state_dict()
    if method == "adabn":  # the same training; only the stored BatchNorm statistics differ
        differ = {k for k in weights if not torch.equal(weights[k], plain_weights[k])}
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        assert differ and all(k.endswith(buffers) for k in differ)
    else:
        history = result.history
        assert all(0 <= row["train_domain_acc"] <= 1 for row in history)
        assert all(np.isfinite(row["train_domain_loss"]) for row in history)
        assert not torch.equal(weights["0.weight"], plain_weights["0.weight"])


def test_dann_run_resumes_to_the_uninterrupted_result(toy_h5, target_h5, tmp_path):
    config = TrainConfig(model="deeplense_cnn", epochs=2, batch_size=8, seed=0,
                         adapt_to=str(target_h5), adaptation="dann")  # fmt: skip
    whole = train(config, toy_h5, tmp_path / "whole")
    train(config, toy_h5, tmp_path / "part", should_stop=lambda _row: True)
    resumed = train(config, toy_h5, tmp_path / "part", resume=True)
    timing = ("seconds", "images_per_s")
    assert [{k: v for k, v in row.items() if k not in timing} for row in resumed.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in whole.history
    ]
    resumed_model, _ = load_checkpoint(resumed.run_dir, "last")
    whole_model, _ = load_checkpoint(whole.run_dir, "last")
    for key, value in whole_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key


def test_adaptation_settings_and_targets_are_checked(toy_h5, tmp_path):
    with pytest.raises(ConfigError, match="adapt_to"):
        TrainConfig(adaptation="dann")
    with pytest.raises(ConfigError, match="adaptation"):
        TrainConfig(adapt_to="target.h5")
    with pytest.raises(ConfigError, match="adaptation must be one of"):
        TrainConfig(adapt_to="target.h5", adaptation="coral")
    three = tmp_path / "rgb.h5"
    with DatasetWriter(three, 4, (3, 16, 16), ("no_sub", "cdm", "axion")) as writer:
        writer.write(
            0, np.zeros((4, 3, 16, 16), np.float32), np.arange(4) % 3, np.zeros(4, np.uint8)
        )
    result = CliRunner().invoke(
        app, ["train", "--data", str(toy_h5), "--out", str(tmp_path / "r"), "--model",
              "deeplense_cnn", "--epochs", "1", "--adapt-to", str(three), "--set",
              "adaptation=adabn", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 2 and "3-channel" in result.output and "rgb.h5" in result.output
    assert not (tmp_path / "r").exists()
