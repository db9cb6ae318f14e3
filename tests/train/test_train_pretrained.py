"""Training that starts from local pretrained weights (--pretrained)."""

import pytest
import torch
from safetensors.torch import load_file

from darklens.train.config import TrainConfig
from darklens.train.trainer import pretrained_weights_path, train


def test_pretrained_paths(trained_run, tmp_path):
    weights = trained_run / "best.safetensors"
    assert pretrained_weights_path(trained_run) == weights
    assert pretrained_weights_path(trained_run / "best.json") == weights
    assert pretrained_weights_path(weights) == weights
    with pytest.raises(FileNotFoundError, match="no pretrained weights"):
        pretrained_weights_path(tmp_path / "nothing.safetensors")


def test_training_starts_from_the_given_weights(trained_run, toy_h5, tmp_path):
    start = load_file(trained_run / "best.safetensors")
    config = TrainConfig(
        model="deeplense_cnn",
        epochs=1,
        batch_size=8,
        lr=1e-9,
        schedule="none",
        seed=5,
        pretrained=str(trained_run),
    )
    result = train(config, toy_h5, tmp_path / "ft")
    tuned = load_file(result.run_dir / "last.safetensors")
    conv = [k for k, v in start.items() if v.ndim == 4]
    assert conv
    for key in conv:  # with a vanishing learning rate the weights stay where they started
        torch.testing.assert_close(tuned[key], start[key], atol=1e-6, rtol=0)
    fresh = train(
        TrainConfig(
            model="deeplense_cnn", epochs=1, batch_size=8, lr=1e-9, schedule="none", seed=5
        ),
        toy_h5,
        tmp_path / "fresh",
    )
    scratch = load_file(fresh.run_dir / "last.safetensors")
    assert any(not torch.allclose(scratch[k], start[k]) for k in conv)
