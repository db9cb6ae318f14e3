"""The training recipe: learning, determinism, kill-and-resume, settings, CLI."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.utils.class_weight import compute_class_weight
from typer.testing import CliRunner

import darklens
from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.runs import load_checkpoint
from darklens.train import TrainConfig, train
from darklens.train.config import build_train_config
from darklens.train.data import batch_plan, epoch_order, shard
from darklens.train.schedule import PlateauState, warmup_cosine_factor
from darklens.train.trainer import RunProgress, class_weights

METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_auc", "lr")
FAST = {"model": "deeplense_cnn", "batch_size": 8, "seed": 0}


def _metrics(history: list[dict]) -> list[tuple]:
    return [tuple(row[k] for k in ("epoch", *METRICS)) for row in history]


def _weights(run_dir: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return load_file(run_dir / f"{which}.safetensors")


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


# -- end to end ----------------------------------------------------------------------------------
def test_tiny_run_learns_and_writes_its_files(toy_h5: Path, tmp_path: Path):
    result = train(TrainConfig(epochs=5, **FAST), toy_h5, tmp_path / "run")
    assert result.epochs_completed == 5 and not result.stopped_early
    assert result.best_val_auc > 0.8, result.history
    assert result.best_val_auc == max(row["val_auc"] for row in result.history)
    assert result.history[result.best_epoch - 1]["val_auc"] == result.best_val_auc

    run = tmp_path / "run"
    for name in ("config.yaml", "best.json", "best.safetensors", "last.json", "history.csv"):
        assert (run / name).is_file(), name
    with open(run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [float(r["val_auc"]) for r in rows] == pytest.approx(
        [r["val_auc"] for r in result.history]
    )
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["img_size"] == 32 and saved["device"] == "cpu" and saved["amp"] is False
    assert Path(saved["data"]).is_absolute()

    model, meta = load_checkpoint(run, "best")
    assert meta["epoch"] == result.best_epoch
    assert meta["val_metrics"]["auc"] == pytest.approx(result.best_val_auc)
    assert meta["model"]["kwargs"] == {"in_chans": 1, "num_classes": 3, "img_size": 32}
    assert meta["preprocessing"]["normalization"] == "minmax"
    assert meta["train_config"]["epochs"] == 5
    _, last_meta = load_checkpoint(run, "last")
    assert last_meta["epoch"] == 5
    # the recorded validation metrics agree with an independent evaluation of the checkpoint
    with LensDataset(toy_h5) as dataset:
        index = dataset.split_indices("val")
        images, labels = dataset.images(index), dataset.labels[index]
    proba = Predictor.from_checkpoint(run, "best").predict_proba(images)
    expected_auc = roc_auc_score(labels, proba, multi_class="ovr", average="macro")
    assert meta["val_metrics"]["auc"] == pytest.approx(expected_auc, abs=1e-9)
    assert meta["val_metrics"]["acc"] == pytest.approx(accuracy_score(labels, proba.argmax(1)))
    assert meta["val_metrics"]["loss"] == pytest.approx(log_loss(labels, proba), rel=1e-5)


def test_same_seed_same_history_and_weights(toy_h5: Path, tmp_path: Path):
    config = TrainConfig(
        epochs=2,
        batch_size=8,
        seed=3,
        augment={
            "dihedral": True,
            "shift_px": 0.5,
            "scale": (0.9, 1.0),
            "gaussian_noise_std": 0.02,
        },
    )
    first = train(config, toy_h5, tmp_path / "a")
    second = train(config, toy_h5, tmp_path / "b")
    assert _metrics(first.history) == _metrics(second.history)
    _assert_same_weights(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    other = train(dataclasses.replace(config, seed=4), toy_h5, tmp_path / "c")
    assert _metrics(other.history) != _metrics(first.history)


_RUNNER = """
import sys, torch
torch.set_num_threads(1)
from darklens.train import TrainConfig, train
train(TrainConfig.from_yaml(sys.argv[1]), None, sys.argv[2], resume=sys.argv[3] == "1")
"""


def test_killed_run_resumes_to_the_uninterrupted_result(toy_h5: Path, tmp_path: Path):
    config = TrainConfig(
        data=str(toy_h5), epochs=4, augment={"shift_px": 0.5}, warmup_epochs=1, **FAST
    )
    config_file = tmp_path / "train.yaml"
    config.to_yaml(config_file)
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(_RUNNER))
    env = {**os.environ, "PYTHONPATH": str(Path(darklens.__file__).parents[1])}
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(script), str(config_file), str(killed_dir), "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not (killed_dir / "last_state.json").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    with open(killed_dir / "history.csv") as handle:
        epochs_done = len(list(csv.DictReader(handle)))
    assert epochs_done < 4, "the run finished before it could be killed"

    resumed = train(config, None, killed_dir, resume=True)
    straight = train(config, None, tmp_path / "straight")
    assert resumed.epochs_completed == straight.epochs_completed == 4
    assert _metrics(resumed.history) == _metrics(straight.history)
    _assert_same_weights(_weights(killed_dir), _weights(tmp_path / "straight"))
    _assert_same_weights(_weights(killed_dir, "best"), _weights(tmp_path / "straight", "best"))
    assert not list(killed_dir.glob(".*.tmp"))


def test_resume_extends_a_finished_run(toy_h5: Path, tmp_path: Path):
    config = TrainConfig(epochs=1, schedule="none", **FAST)
    train(config, toy_h5, tmp_path / "run")
    again = train(config, toy_h5, tmp_path / "run", resume=True)
    assert again.epochs_completed == 1 and len(again.history) == 1
    longer = train(
        dataclasses.replace(config, epochs=2), toy_h5, tmp_path / "run", resume=True
    )
    straight = train(
        dataclasses.replace(config, epochs=2), toy_h5, tmp_path / "straight"
    )
    assert _metrics(longer.history) == _metrics(straight.history)


def test_run_folder_guards(toy_h5: Path, tmp_path: Path):
    config = TrainConfig(epochs=1, **FAST)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(config, toy_h5, tmp_path / "run", resume=True)
    train(config, toy_h5, tmp_path / "run")
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, toy_h5, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"lr \(run has 0.001, given 0.01\)"):
        train(dataclasses.replace(config, lr=0.01), toy_h5, tmp_path / "run", resume=True)


def test_lazy_loading_matches_in_memory(toy_h5: Path, tmp_path: Path):
    memory = train(
        TrainConfig(epochs=1, in_memory=True, **FAST), toy_h5, tmp_path / "m"
    )
    lazy = train(
        TrainConfig(epochs=1, in_memory=False, num_workers=1, **FAST),
        toy_h5,
        tmp_path / "l",
    )
    assert _metrics(lazy.history) == _metrics(memory.history)


def test_dataset_normalisation_stores_train_split_statistics(toy_h5: Path, tmp_path: Path):
    train(
        TrainConfig(epochs=1, normalization="dataset", **FAST), toy_h5, tmp_path / "run"
    )
    _, meta = load_checkpoint(tmp_path / "run")
    with LensDataset(toy_h5) as dataset:
        images = dataset.images(dataset.split_indices("train")).astype(np.float64)
    assert meta["preprocessing"]["mean"] == pytest.approx([images.mean()], rel=1e-9)
    assert meta["preprocessing"]["std"] == pytest.approx([images.std()], rel=1e-9)


def test_asinh_normalisation_stores_the_training_sky_noise_and_predicts_alike(
    toy_h5: Path, tmp_path: Path
):
    """The softening is the training images' border noise (recomputed here independently), and
    the predictor applies the same asinh as the validation pass did."""
    result = train(TrainConfig(epochs=1, normalization="asinh", **FAST), toy_h5, tmp_path / "run")
    _, meta = load_checkpoint(tmp_path / "run")
    with LensDataset(toy_h5) as dataset:
        rows = dataset.split_indices("train")
        border = dataset.images(rows).astype(np.float64)
        val = dataset.split_indices("val")
        val_images, val_labels = dataset.images(val), dataset.labels[val]
    frame = np.concatenate([border[..., :4, :], border[..., -4:, :]], axis=-2).ravel()
    sides = np.concatenate([border[..., 4:-4, :4], border[..., 4:-4, -4:]], axis=-1).ravel()
    pixels = np.concatenate([frame, sides])
    expected = 1.4826 * np.median(np.abs(pixels - np.median(pixels)))
    assert meta["preprocessing"]["softening"] == pytest.approx([expected], rel=1e-9)
    proba = Predictor.from_checkpoint(tmp_path / "run", device="cpu").predict_proba(val_images)
    auc = roc_auc_score(np.eye(3)[val_labels], proba, average="macro", multi_class="ovr")
    assert auc == pytest.approx(result.best_val_auc, abs=1e-6)


def test_resized_training_records_the_new_size(toy_h5: Path, tmp_path: Path):
    result = train(TrainConfig(epochs=1, img_size=16, **FAST), toy_h5, tmp_path / "run")
    model, meta = load_checkpoint(tmp_path / "run")
    assert meta["model"]["kwargs"]["img_size"] == 16
    assert meta["preprocessing"]["img_size"] == 16
    assert meta["preprocessing"]["data_image_shape"] == [32, 32]
    assert math.isfinite(result.history[0]["val_auc"])
    assert model(torch.rand(2, 1, 16, 16)).shape == (2, 3)


def test_cropped_training_records_the_crop_and_predicts_alike(toy_h5: Path, tmp_path: Path):
    """``crop`` cuts the central pixels before everything (the model sees 20x20 at full
    resolution); the checkpoint stores it, and the predictor given the dataset's full images
    reproduces the validation AUC, as it does given the crops themselves."""
    result = train(
        TrainConfig(epochs=1, crop=20, normalization="dataset", **FAST), toy_h5, tmp_path / "r"
    )
    model, meta = load_checkpoint(tmp_path / "r")
    assert meta["preprocessing"]["crop"] == 20 and meta["preprocessing"]["img_size"] == 20
    assert meta["model"]["kwargs"]["img_size"] == 20
    assert model(torch.rand(2, 1, 20, 20)).shape == (2, 3)
    with LensDataset(toy_h5) as dataset:
        train_images = dataset.images(dataset.split_indices("train")).astype(np.float64)
        val = dataset.split_indices("val")
        val_images, val_labels = dataset.images(val), dataset.labels[val]
    centre = train_images[..., 6:26, 6:26]  # (32 - 20) // 2 = 6: the statistics of the crop
    assert meta["preprocessing"]["mean"] == pytest.approx([centre.mean()], rel=1e-9)
    predictor = Predictor.from_checkpoint(tmp_path / "r", device="cpu")
    full = predictor.predict_proba(val_images)
    cropped = predictor.predict_proba(val_images[..., 6:26, 6:26])
    np.testing.assert_allclose(full, cropped, rtol=0, atol=0)
    auc = roc_auc_score(np.eye(3)[val_labels], full, average="macro", multi_class="ovr")
    assert auc == pytest.approx(result.best_val_auc, abs=1e-6)
    with pytest.raises(ValueError, match="smaller than the crop"):
        predictor.predict_proba(val_images[..., :16, :16])


def test_a_crop_larger_than_the_images_is_refused(toy_h5: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="crop=40 is larger than"):
        train(TrainConfig(epochs=1, crop=40, **FAST), toy_h5, tmp_path / "r")


@pytest.mark.parametrize(
    "changes",
    [
        {"amp": True, "amp_dtype": "bf16"},
        {"channels_last": True},
        {
            "class_weighting": "balanced",
            "balanced_sampling": True,
            "label_smoothing": 0.1,
            "optimizer": "adam",
            "schedule": "plateau",
            "grad_clip_norm": 1.0,
            "augment": {"shear_deg": 5.0, "scale": (0.8, 1.0)},
        },
    ],
    ids=["bf16-autocast", "channels-last", "recipe-options"],
)
def test_training_options_run_and_stay_finite(toy_h5: Path, tmp_path: Path, changes: dict):
    result = train(
        TrainConfig.from_dict({"epochs": 1, **FAST, **changes}), toy_h5, tmp_path / "r"
    )
    row = result.history[0]
    assert all(math.isfinite(row[k]) for k in METRICS), row


def test_progress_is_a_callback_and_the_library_prints_nothing(toy_h5, tmp_path, capsys):
    from darklens.cli.progress import TrainProgress

    train(TrainConfig(epochs=1, **FAST), toy_h5, tmp_path / "loud", callbacks=[TrainProgress()])
    assert "epoch 1/1" in capsys.readouterr().err
    train(TrainConfig(epochs=1, **FAST), toy_h5, tmp_path / "quiet")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_single_class_validation_split_is_refused(tmp_path: Path):
    from darklens.data.h5 import DatasetWriter

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 6)
    split = np.array([0] * 8 + [1] * 4)
    labels[8:] = 1
    with DatasetWriter(tmp_path / "d.h5", 12, (1, 16, 16), ["a", "b"]) as writer:
        writer.write(0, rng.random((12, 1, 16, 16)), labels, split)
    with pytest.raises(ValueError, match="only one class"):
        train(TrainConfig(epochs=1, **FAST), tmp_path / "d.h5", tmp_path / "run")


def test_missing_dataset_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match="no dataset"):
        train(TrainConfig(), None, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        train(TrainConfig(), tmp_path / "absent.h5", tmp_path / "run")


# -- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "sgd"}, "optimizer must be one of adamw, adam"),
        ({"schedule": "step"}, "schedule must be one of"),
        ({"normalization": "l2"}, "normalization must be one of"),
        ({"augment": {"scale": (1.0, 0.5)}}, "augment.scale"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
        ({"amp": "maybe"}, "amp must be true, false or auto"),
        ({"device": "tpu"}, "device must be"),
        ({"model_kwargs": {"num_classes": 4}}, "may not set num_classes"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"colour": "red"}, "unknown setting"),
        ({"crop": 4}, "crop must be >= 8"),
        ({"crop": 16, "task": "denoise", "model": "unet"}, "a denoiser keeps"),
    ],
)
def test_bad_settings_are_refused(changes: dict, message: str):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(changes)


def test_config_yaml_round_trip(tmp_path: Path):
    config = TrainConfig(
        model_kwargs={"dropout": 0.1},
        augment={"shift_px": 0.5, "scale": (0.75, 1.0)},
        amp=True,
        img_size=64,
    )
    config.to_yaml(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config


def test_settings_layering_order(tmp_path: Path):
    (tmp_path / "x.yaml").write_text(
        "epochs: 7\nlr: 0.01\nbatch_size: 32\naugment: {shift_px: 1.0}\n"
    )
    config = build_train_config(
        tmp_path / "x.yaml",
        {"lr": 0.002, "batch_size": None},
        {"batch_size": "16", "augment.shear_deg": "3"},
    )
    assert config.epochs == 7  # from the file
    assert config.lr == 0.002  # option over file
    assert config.batch_size == 16  # --set over both
    assert config.augment.shift_px == 1.0 and config.augment.shear_deg == 3.0
    assert config.weight_decay == TrainConfig().weight_decay  # default kept
    with pytest.raises(FileNotFoundError, match="absent.yaml"):
        build_train_config(tmp_path / "absent.yaml")


# -- pieces --------------------------------------------------------------------------------------
def test_balanced_class_weights_match_scikit_learn():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 7)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(class_weights(labels, ["a", "b", "c"]).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="d have no training images"):
        class_weights(labels, ["a", "b", "c", "d"])


def test_epoch_order_depends_only_on_seed_and_epoch():
    labels = np.array([0] * 90 + [1] * 10)
    a = epoch_order(labels, seed=1, epoch=2)
    assert sorted(a.tolist()) == list(range(100))
    np.testing.assert_array_equal(a, epoch_order(labels, seed=1, epoch=2))
    assert not np.array_equal(a, epoch_order(labels, seed=1, epoch=3))
    balanced = np.concatenate(
        [epoch_order(labels, seed=0, epoch=e, balanced=True) for e in range(20)]
    )
    share_minority = np.mean(labels[balanced] == 1)
    assert share_minority == pytest.approx(0.5, abs=0.05)


def test_shards_cover_everything_equally():
    order = np.random.default_rng(0).permutation(11)
    shards = [shard(order, rank, 3) for rank in range(3)]
    assert {len(s) for s in shards} == {4}
    assert set(np.concatenate(shards).tolist()) == set(range(11))
    plan = batch_plan(np.arange(9), 4, drop_single=True)
    assert [len(b) for b in plan] == [4, 4]
    assert [len(b) for b in batch_plan(np.arange(9), 4)] == [4, 4, 1]


def test_cosine_schedule_matches_torch():
    total = 20
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    for step in range(total):
        assert warmup_cosine_factor(step, total, 0, cosine=True) == pytest.approx(
            optimizer.param_groups[0]["lr"], abs=1e-12
        )
        optimizer.step()
        reference.step()
    warm = [warmup_cosine_factor(s, total, 4, cosine=False) for s in range(6)]
    assert warm == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_plateau_matches_torch_reduce_on_plateau():
    metrics = [0.5, 0.6, 0.6, 0.59, 0.58, 0.7, 0.7, 0.7, 0.71, 0.6, 0.6, 0.6]
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=0.5, patience=1, threshold=0.0, threshold_mode="abs"
    )
    state = PlateauState()
    for metric in metrics:
        state.update(metric, patience=1, factor=0.5)
        reference.step(metric)
        assert state.scale == pytest.approx(optimizer.param_groups[0]["lr"])
    assert PlateauState.from_json(state.to_json()) == state


def test_early_stopping_bookkeeping():
    progress = RunProgress()
    flags = []
    for auc in (0.7, 0.8, 0.79, float("nan"), 0.85, 0.84, 0.83, 0.82, 0.9):
        progress.epoch += 1
        flags.append(progress.record(auc, patience=3))
        if progress.stopped_early:
            break
    assert flags == [True, True, False, False, True, False, False, False]
    assert progress.best_epoch == 5 and progress.best_score == 0.85 and progress.stopped_early
    restored = RunProgress.from_json(progress.to_json())
    assert restored == progress


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_train_and_resume(toy_h5: Path, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["train", "--data", str(toy_h5), "--model", "deeplense_cnn", "--out", str(out)]
    result = runner.invoke(
        app,
        [*args, "--epochs", "1", "--batch-size", "8", "--set", "augment.shift_px=0.5", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["batch_size"] == 8
    assert saved["augment"]["shift_px"] == 0.5

    resumed = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert "best val macro AUC" in resumed.output
    with open(out / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_cli_bad_input_is_a_one_line_error(toy_h5: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["train", "--data", str(toy_h5), "--out", str(tmp_path / "r"), "--set", "optimizer=sgd"],
    )
    assert result.exit_code == 2
    assert "optimizer must be one of" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(
        app, ["train", "--data", str(tmp_path / "x.h5"), "--out", str(tmp_path / "r")]
    )
    assert missing.exit_code == 2 and "no dataset file" in missing.output


def test_eval_batch_size_changes_only_how_validation_is_batched(toy_h5: Path, tmp_path: Path):
    base = TrainConfig(model="deeplense_cnn", epochs=2, batch_size=8, seed=0)
    default = train(base, toy_h5, tmp_path / "a")
    small = train(dataclasses.replace(base, eval_batch_size=5), toy_h5, tmp_path / "b")
    _assert_same_weights(_weights(default.run_dir), _weights(small.run_dir))
    for one, other in zip(default.history, small.history, strict=True):
        assert one["val_auc"] == pytest.approx(other["val_auc"], abs=1e-9)
        assert one["val_loss"] == pytest.approx(other["val_loss"], rel=1e-5)
    with pytest.raises(ConfigError, match="eval_batch_size"):
        TrainConfig(eval_batch_size=0)
