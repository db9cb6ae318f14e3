"""Models that take more than images (lensed transients: images + light curves) through the
same training, evaluation and prediction path as image models."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from darklens.config import ConfigError
from darklens.data.h5 import DatasetWriter, LensDataset
from darklens.data.transforms import series_minmax_normalize
from darklens.evaluate.run import evaluate_checkpoint
from darklens.models import model_inputs
from darklens.predict import Predictor
from darklens.predict.batch import predict_files
from darklens.recipes import fit
from darklens.train import TrainConfig, train
from darklens.train.data import batch_plan, open_split

CLASSES = ("flat", "rising", "falling")
N_EPOCHS, N_BANDS, SIZE = 10, 4, 24


def _curves(kind: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light curves [N, T, bands] whose shape (flat / rising / falling) tells the class; the
    overall level and scale are random so only the shape, not the flux, carries the label."""
    t = np.linspace(0.0, 1.0, N_EPOCHS)
    shape = np.where(kind[:, None] == 1, t, np.where(kind[:, None] == 2, 1.0 - t, 0.5))
    level = rng.uniform(-50, 50, size=(len(kind), 1, N_BANDS))
    scale = rng.uniform(5, 500, size=(len(kind), 1, N_BANDS))
    noise = rng.normal(0, 0.08, size=(len(kind), N_EPOCHS, N_BANDS))
    return (level + scale * (shape[:, :, None] + noise)).astype(np.float32)


def make_curve_dataset(path: Path, per_class: int = 40, seed: int = 0) -> Path:
    """Images of pure noise (they carry no label) with light curves that do."""
    rng = np.random.default_rng(seed)
    n = per_class * len(CLASSES)
    labels = np.arange(n) % len(CLASSES)
    images = rng.normal(size=(n, N_BANDS, SIZE, SIZE)).astype(np.float32)
    split = np.select([np.arange(n) < 0.6 * n, np.arange(n) < 0.8 * n], [0, 1], 2).astype(np.uint8)
    with DatasetWriter(
        path,
        n,
        (N_BANDS, SIZE, SIZE),
        CLASSES,
        manifest={"toy": "curves"},
        extra_inputs={"light_curves": (N_EPOCHS, N_BANDS)},
    ) as writer:
        writer.write(0, images, labels, split, inputs={"light_curves": _curves(labels, rng)})
    return path


@pytest.fixture(scope="module")
def curve_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_curve_dataset(tmp_path_factory.mktemp("curves") / "curves.h5", per_class=80)


@pytest.fixture(scope="module")
def curve_run(curve_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "lonet"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(model="lonet", epochs=8, batch_size=16, lr=3e-3, seed=0)
        train(config, curve_h5, run_dir)
    finally:
        torch.set_num_threads(previous)
    return run_dir


def test_series_minmax_matches_numpy():
    x = torch.randn(3, 7, 2, dtype=torch.float64) * 10
    x[1, :, 0] = 4.0  # a constant curve scales to zeros
    low, high = x.numpy().min(axis=1, keepdims=True), x.numpy().max(axis=1, keepdims=True)
    expected = (x.numpy() - low) / np.maximum(high - low, 1e-12)
    np.testing.assert_allclose(series_minmax_normalize(x).numpy(), expected)
    assert float(series_minmax_normalize(x)[1, :, 0].abs().max()) == 0.0
    with pytest.raises(ValueError, match=r"\[B, T, C\]"):
        series_minmax_normalize(torch.zeros(2, 3))


def test_batches_carry_the_extra_inputs_in_model_order(curve_h5: Path):
    assert model_inputs("lonet") == ("images", "light_curves")
    with LensDataset(curve_h5) as dataset:
        plan = batch_plan(np.array([5, 0, 3]), 2)
        for in_memory in (True, False):
            split = open_split(dataset, "train", in_memory, extras=("light_curves",))
            (images, curves), labels = next(iter(split.batches(plan)))
            rows = dataset.split_indices("train")[[5, 0]]
            np.testing.assert_array_equal(images.numpy(), dataset.images(rows))
            np.testing.assert_array_equal(curves.numpy(), dataset.inputs("light_curves", rows))
            np.testing.assert_array_equal(labels.numpy(), dataset.labels[rows])


def test_light_curves_reach_the_model_and_it_learns(curve_run: Path):
    """The images are noise: only the light curves can separate the classes."""
    with open(curve_run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert max(float(r["val_acc"]) for r in rows) >= 0.8  # chance: 1/3
    predictor = Predictor.from_checkpoint(curve_run)
    assert predictor.inputs_ == ("images", "light_curves")
    assert predictor.input_shapes_ == {"light_curves": (N_EPOCHS, N_BANDS)}


def test_evaluation_and_predictor_agree(curve_run: Path, curve_h5: Path, tmp_path: Path):
    metrics = evaluate_checkpoint(curve_run, curve_h5, tmp_path / "eval")
    assert metrics["accuracy"] >= 0.7
    assert (tmp_path / "eval" / "light_curves.png").stat().st_size > 1000
    assert 'id="light-curves"' in (tmp_path / "eval" / "report.html").read_text()
    with LensDataset(curve_h5) as dataset:
        test = dataset.split_indices("test")
        images, curves = dataset.images(test), dataset.inputs("light_curves", test)
    proba = Predictor.from_checkpoint(curve_run).predict_proba(
        images, extras={"light_curves": curves}
    )
    with open(tmp_path / "eval" / "predictions.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    from_csv = np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in table])
    np.testing.assert_allclose(from_csv, proba, atol=1e-6)


def test_predictor_checks_the_extra_inputs(curve_run: Path):
    predictor = Predictor.from_checkpoint(curve_run)
    images = np.zeros((2, N_BANDS, SIZE, SIZE), np.float32)
    curves = np.zeros((2, N_EPOCHS, N_BANDS), np.float32)
    with pytest.raises(ValueError, match="missing light_curves"):
        predictor.predict_proba(images)
    with pytest.raises(ValueError, match=r"must be shaped \(2, 10, 4\)"):
        predictor.predict_proba(images, extras={"light_curves": curves[:, :5]})
    with pytest.raises(ValueError, match="unexpected extra inputs"):
        predictor.predict_proba(images, extras={"light_curves": curves, "spectra": curves})
    bad = curves.copy()
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="example 1 contains NaN"):
        predictor.predict_proba(images, extras={"light_curves": bad})
    one = predictor.predict_proba(images[0], extras={"light_curves": curves[0]})
    assert one.shape == (1, len(CLASSES))


def test_predict_files_reads_extras_from_a_dataset(curve_run: Path, curve_h5: Path, tmp_path):
    rows = predict_files(curve_run, curve_h5, tmp_path / "p.csv", split="test")
    with LensDataset(curve_h5) as dataset:
        assert rows == dataset.split_indices("test").size
    np.save(tmp_path / "one.npy", np.zeros((N_BANDS, SIZE, SIZE), np.float32))
    with pytest.raises(ValueError, match="predict on one darklens dataset file"):
        predict_files(curve_run, tmp_path / "one.npy", tmp_path / "q.csv")


def test_dataset_without_the_extra_input_is_refused(tmp_path: Path, curve_run: Path):
    plain = tmp_path / "plain.h5"
    rng = np.random.default_rng(1)
    with DatasetWriter(plain, 30, (N_BANDS, SIZE, SIZE), CLASSES) as writer:
        images = rng.normal(size=(30, N_BANDS, SIZE, SIZE)).astype(np.float32)
        writer.write(0, images, np.arange(30) % 3, np.repeat([0, 1, 2], 10).astype(np.uint8))
    with pytest.raises(ValueError, match="needs the extra input 'light_curves'"):
        train(TrainConfig(model="glonet", epochs=1, batch_size=8), plain, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="takes the extra input 'light_curves'"):
        evaluate_checkpoint(curve_run, plain, tmp_path / "eval")


def test_image_models_ignore_extra_inputs(curve_h5: Path, tmp_path: Path):
    config = TrainConfig(model="deeplense_cnn", epochs=1, batch_size=16, seed=0)
    result = train(config, curve_h5, tmp_path / "cnn")
    predictor = Predictor.from_checkpoint(result.run_dir)
    assert predictor.inputs_ == ("images",)
    metrics = evaluate_checkpoint(result.run_dir, curve_h5, tmp_path / "eval")
    assert 0.0 <= metrics["accuracy"] <= 1.0


def test_stack_trains_members_then_fits_its_svm(curve_h5: Path, tmp_path: Path):
    from darklens.models.stacking import SVMHead

    torch.set_num_threads(1)
    config = TrainConfig(
        model="deepgravilens",
        model_kwargs={"members": ["lonet", "cnn_lstm"]},
        epochs=4,
        batch_size=16,
        lr=3e-3,
        seed=0,
    )
    config = dataclasses.replace(config, data=str(curve_h5))
    with pytest.raises(ConfigError, match="recipes.fit"):
        train(config, curve_h5, tmp_path / "stack")  # a stack is not fitted by backprop
    result = fit(config, tmp_path / "stack")
    run = result.run_dir
    assert sorted(p.name for p in (run / "members").iterdir()) == ["cnn_lstm", "lonet"]
    report = json.loads((run / "stack.json").read_text())
    candidates = report["svm"]["candidates"]
    best = max(c["val_accuracy"] for c in candidates)
    assert report["svm"]["val_accuracy"] == best and len(candidates) >= 2

    stack = Predictor.from_checkpoint(run)
    members = [Predictor.from_checkpoint(run / "members" / n) for n in ("lonet", "cnn_lstm")]
    with LensDataset(curve_h5) as dataset:
        test = dataset.split_indices("test")
        images, curves = (
            dataset.images(test),
            {"light_curves": dataset.inputs("light_curves", test)},
        )
    # independent path: the members' own probabilities, concatenated, through the stored head
    features = np.concatenate([m.predict_proba(images, extras=curves) for m in members], axis=1)
    head = stack.model_.head
    assert isinstance(head, SVMHead) and head.fitted
    expected = torch.softmax(head(torch.from_numpy(features)).double(), dim=1).numpy()
    np.testing.assert_allclose(stack.predict_proba(images, extras=curves), expected, atol=1e-6)
    metrics = evaluate_checkpoint(run, curve_h5, tmp_path / "eval")
    assert metrics["accuracy"] >= 0.6

    # resuming reuses the finished members and refits the same SVM
    before = (run / "members" / "lonet" / "history.csv").read_text()
    again = fit(config, run, resume=True)
    assert (run / "members" / "lonet" / "history.csv").read_text() == before
    assert again.best_val_auc == result.best_val_auc
    with pytest.raises(FileExistsError, match="--resume"):
        fit(config, run)


def test_onnx_export_refuses_multi_input_models(curve_run: Path, tmp_path: Path):
    from darklens.predict.onnx_export import export_onnx

    with pytest.raises(ValueError, match="image-only models; lonet also takes light_curves"):
        export_onnx(curve_run, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
