"""Training with task=regress and task=denoise: settings, masking, checkpoints, learning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.train import TrainConfig, train
from darklens.train.callbacks import Callback
from darklens.train.config import build_train_config

FAST = {"model": "deeplense_cnn", "batch_size": 8, "seed": 0}


def test_task_settings_validate_and_round_trip():
    config = build_train_config(
        assignments={"task": "regress", "targets": "[log10_axion_mass, theta_e_arcsec]"}
    )
    assert config.targets == ("log10_axion_mass", "theta_e_arcsec")
    assert (config.loss, config.monitor) == ("gaussian_nll", "val_loss")
    assert TrainConfig.from_yaml(config.to_yaml()) == config
    denoise = TrainConfig(task="denoise", model="unet")
    assert (denoise.loss, denoise.normalization) == ("mse", "dataset")
    assert TrainConfig.from_yaml(denoise.to_yaml()) == denoise
    for bad, message in [
        ({"task": "regress"}, "needs targets"),
        ({"task": "fit"}, "task must be one of"),
        ({"targets": ["theta_e"]}, "task=regress only"),
        ({"task": "regress", "targets": ["a"], "loss": "focal"}, "loss must be one of"),
        ({"task": "regress", "targets": ["a"], "monitor": "val_acc"}, "monitor must be one of"),
        ({"task": "regress", "targets": ["a", "a"]}, "repeat"),
        ({"task": "denoise", "normalization": "zscore"}, "normalization dataset or none"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**bad)


def test_regression_learns_the_ring_radius_and_stores_its_scaling(regression_h5, tmp_path):
    config = TrainConfig(
        task="regress", targets=("ring_radius_px",), epochs=8, lr=3e-3, grad_clip_norm=1.0, **FAST
    )
    result = train(config, regression_h5, tmp_path / "run")
    assert result.monitor == "val_loss"
    best = result.history[result.best_epoch - 1]
    assert best["val_loss"] == min(row["val_loss"] for row in result.history)
    with LensDataset(regression_h5) as data:
        radius = data.truth("ring_radius_px")[data.split_indices("val")]
    assert best["val_rmse"] < 0.6 * radius.std(), result.history  # beats the mean
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["task"] == "regress" and meta["model"]["kwargs"]["num_classes"] == 2
    with LensDataset(regression_h5) as data:
        train_radius = data.truth("ring_radius_px")[data.split_indices("train")]
    assert meta["targets"]["mean"] == pytest.approx([train_radius.mean()])
    assert meta["targets"]["std"] == pytest.approx([train_radius.std()])
    assert "decision_threshold" not in meta


def test_nan_targets_are_left_out_with_a_note(regression_h5, tmp_path):
    notes = []

    class Notes(Callback):
        def on_note(self, text: str) -> None:
            notes.append(text)

    config = TrainConfig(
        task="regress", targets=("log10_axion_mass",), loss="mse", epochs=1, **FAST
    )
    train(config, regression_h5, tmp_path / "run", callbacks=[Notes()])
    with LensDataset(regression_h5) as data:
        train_rows = data.split_indices("train")
        n_nan = int(np.isnan(data.truth("axion_mass_ev")[train_rows]).sum())
    assert any(f"{n_nan} of {len(train_rows)} train images have a NaN target" in n for n in notes)


def test_bad_targets_are_refused_clearly(regression_h5, tmp_path, toy_h5):
    with pytest.raises(
        ConfigError, match="available truth columns: amplitude, axion_mass_ev, ring_radius"
    ):
        train(TrainConfig(task="regress", targets=("theta_e",), **FAST), regression_h5, tmp_path)
    with pytest.raises(ConfigError, match="0 of the .* have a value of every target"):
        train(TrainConfig(task="regress", targets=("ring_radius_px", "log10_axion_mass",
              "total_subhalo_mass_msun"), **FAST), regression_h5, tmp_path / "r")  # fmt: skip
    with pytest.raises(ConfigError, match="no noiseless images"):
        train(TrainConfig(task="denoise", model="unet", batch_size=8), toy_h5, tmp_path / "d")
    with pytest.raises(ConfigError, match="needs a model with image outputs"):
        train(TrainConfig(task="denoise", **FAST), regression_h5, tmp_path / "d")
    with pytest.raises(ConfigError, match="needs a model with logits outputs"):
        train(TrainConfig(task="regress", targets=("ring_radius",), model="unet"), regression_h5)
    assert not list(Path(tmp_path).iterdir())


def test_denoising_unet_beats_the_noisy_input(regression_h5, tmp_path):
    config = TrainConfig(
        task="denoise", model="unet", model_kwargs={"size": "small"}, epochs=4, lr=3e-3,
        batch_size=8, seed=0,
    )  # fmt: skip
    result = train(config, regression_h5, tmp_path / "run")
    with LensDataset(regression_h5) as data:
        rows = data.split_indices("val")
        noise = data.images(rows) - data.clean_images(rows)
    std = json.loads((tmp_path / "run" / "best.json").read_text())["preprocessing"]["std"][0]
    noisy_rmse = float(np.sqrt(np.mean(noise**2))) / std  # the identity's error, normalised
    best = result.history[result.best_epoch - 1]
    assert best["val_rmse"] < 0.8 * noisy_rmse, (best, noisy_rmse)


def test_deeplense_imported_axion_files_regress_their_mass(tmp_path):
    """DeepLense axion files carry [image, mass]: the import's truth is a regression target."""
    from darklens.data.deeplense import import_deeplense

    rng = np.random.default_rng(0)
    for folder in ("Model_II/axion", "Model_II_test/axion", "Model_II/cdm", "Model_II_test/cdm"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        for i in range(4):
            image = rng.random((16, 16))
            if folder.endswith("axion"):
                pair = np.empty(2, dtype=object)
                pair[0], pair[1] = image, 10 ** rng.uniform(-24, -22)
                np.save(tmp_path / "in" / folder / f"{i}.npy", pair, allow_pickle=True)
            else:
                np.save(tmp_path / "in" / folder / f"{i}.npy", image)
    import_deeplense(tmp_path / "in", tmp_path / "dl.h5")
    config = TrainConfig(
        task="regress", targets=("log10_axion_mass",), val_split="test", epochs=1, **FAST
    )
    result = train(config, tmp_path / "dl.h5", tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    with LensDataset(tmp_path / "dl.h5") as data:
        masses = data.truth("axion_mass_ev")[data.split_indices("train")]
    assert meta["targets"]["mean"] == pytest.approx([np.nanmean(np.log10(masses))])
    assert np.isfinite(result.history[0]["val_rmse"])


def test_train_cli_reports_regression_epochs(regression_h5, tmp_path):
    from typer.testing import CliRunner

    from darklens.cli import app

    result = CliRunner().invoke(
        app,
        ["train", "--data", str(regression_h5), "--model", "deeplense_cnn", "--epochs", "1",
         "--batch-size", "8", "--out", str(tmp_path / "run"), "--set", "task=regress",
         "--set", "targets=[ring_radius, log10_axion_mass]", "--set", "loss=huber"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "val loss" in result.output and "rmse" in result.output
    assert "best val_loss" in result.output and "AUC" not in result.output
    assert "of 54 train images have a NaN target" in result.output
    meta = json.loads((tmp_path / "run" / "best.json").read_text())
    assert meta["targets"]["names"] == ["ring_radius", "log10_axion_mass"]
    assert meta["model"]["kwargs"]["num_classes"] == 2  # huber: no variance outputs


def test_classifier_only_paths_refuse_other_tasks(regression_h5, tmp_path):
    from darklens.lightning import LensClassifier
    from darklens.recipes import fit

    regress = {"task": "regress", "targets": ("ring_radius",)}
    with pytest.raises(ConfigError, match="LensClassifier classifies"):
        LensClassifier(
            {"normalization": "minmax", "img_size": 24, "in_chans": 1}, ["a", "b"], regress
        )
    stack = TrainConfig(model="deepgravilens", data=str(regression_h5), **regress)
    with pytest.raises(ConfigError, match="stack of classifiers"):
        fit(stack, tmp_path / "run")
    on_the_fly = TrainConfig(simulate={"preset": "model_ii"}, model="deeplense_cnn", **regress)
    with pytest.raises(ConfigError, match="not on the fly"):
        train(on_the_fly, out_dir=tmp_path / "fly")
    assert not (tmp_path / "fly").exists()


def test_resumed_regression_equals_the_uninterrupted_run(regression_h5, tmp_path):
    import dataclasses

    config = TrainConfig(
        task="regress", targets=("ring_radius_px",), epochs=2, schedule="none", **FAST
    )
    whole = train(config, regression_h5, tmp_path / "whole")
    train(dataclasses.replace(config, epochs=1), regression_h5, tmp_path / "split")
    resumed = train(config, regression_h5, tmp_path / "split", resume=True)
    assert [r["val_rmse"] for r in resumed.history] == [r["val_rmse"] for r in whole.history]


def test_asinh_cropped_regression_predicts_its_validation_numbers(regression_h5, tmp_path):
    """The Regressor applies the checkpoint's whole preprocessing (asinh softening and crop):
    its predictions on the validation images give the RMSE the last epoch reported."""
    from darklens.predict.tasks import Regressor

    config = TrainConfig(
        task="regress", targets=("ring_radius_px",), epochs=1, normalization="asinh", crop=20,
        **FAST,
    )  # fmt: skip
    result = train(config, regression_h5, tmp_path / "run")
    regressor = Regressor.from_checkpoint(tmp_path / "run" / "last.json", device="cpu")
    with LensDataset(regression_h5) as data:
        val = data.split_indices("val")
        images, radius = data.images(val), data.truth("ring_radius_px")[val]
    predicted = regressor.predict(images, tta=False)[0][:, 0]
    rmse = float(np.sqrt(np.mean((predicted - radius) ** 2)))
    assert rmse == pytest.approx(result.history[-1]["val_rmse"], rel=1e-4)
