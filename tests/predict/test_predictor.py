"""Predictor: the training preprocessing from the checkpoint, flexible inputs, clear errors, TTA."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from darklens.data.h5 import LensDataset
from darklens.models import create_model
from darklens.predict import Predictor
from darklens.runs import load_checkpoint, save_checkpoint

CLOSE = {"rtol": 1e-5, "atol": 1e-7}  # batch composition changes float rounding slightly


def _test_images(toy_h5: Path) -> tuple[np.ndarray, np.ndarray]:
    with LensDataset(toy_h5) as dataset:
        index = dataset.split_indices("test")
        return dataset.images(index), dataset.labels[index]


def _numpy_minmax(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float64)
    low, high = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    return ((flat - low) / (high - low)).reshape(images.shape).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def test_predictions_equal_the_model_on_preprocessed_data(trained_run: Path, toy_h5: Path):
    images, labels = _test_images(toy_h5)
    predictor = Predictor.from_checkpoint(trained_run)
    model, meta = load_checkpoint(trained_run)
    with torch.no_grad():
        logits = model(torch.from_numpy(_numpy_minmax(images))).double().numpy()
    proba = predictor.predict_proba(images)
    np.testing.assert_allclose(proba, _softmax(logits), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(predictor.predict(images), proba.argmax(1))
    assert list(predictor.classes_) == meta["class_names"] == ["no_sub", "cdm", "axion"]
    np.testing.assert_array_equal(
        predictor.predict_labels(images), predictor.classes_[proba.argmax(1)]
    )
    assert predictor.checkpoint_["epoch"] == meta["epoch"]


def test_input_forms_give_the_same_answers(trained_run: Path, toy_h5: Path):
    images, _ = _test_images(toy_h5)
    predictor = Predictor.from_checkpoint(trained_run, batch_size=4)
    reference = predictor.predict_proba(images)
    np.testing.assert_allclose(
        predictor.predict_proba(images[:, 0]), reference, **CLOSE
    )  # [N, H, W]
    np.testing.assert_allclose(
        predictor.predict_proba(images[2, 0]), reference[2:3], **CLOSE
    )  # [H, W]
    np.testing.assert_allclose(
        predictor.predict_proba(images[2]), reference[2:3], **CLOSE
    )  # [1, H, W]
    np.testing.assert_allclose(
        predictor.predict_proba(torch.from_numpy(images)), reference, **CLOSE
    )
    whole = Predictor.from_checkpoint(trained_run, batch_size=256).predict_proba(images)
    np.testing.assert_allclose(whole, reference, **CLOSE)  # batching does not matter


def test_integer_images_are_accepted(trained_run: Path, toy_h5: Path):
    images, _ = _test_images(toy_h5)
    counts = np.round(images * 1000).astype(np.int32)
    predictor = Predictor.from_checkpoint(trained_run)
    np.testing.assert_allclose(
        predictor.predict_proba(counts), predictor.predict_proba(counts.astype(np.float64))
    )


def test_bad_inputs_are_refused(trained_run: Path, toy_h5: Path):
    images, _ = _test_images(toy_h5)
    predictor = Predictor.from_checkpoint(trained_run)
    broken = images.copy()
    broken[3, 0, 5, 5] = np.nan
    with pytest.raises(ValueError, match="image 3 contains NaN"):
        predictor.predict_proba(broken)
    with pytest.raises(ValueError, match="3 channel.*trained on 1"):
        predictor.predict_proba(np.repeat(images, 3, axis=1))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict_proba(images[None])
    with pytest.raises(ValueError, match="numeric"):
        predictor.predict_proba(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="no images"):
        predictor.predict_proba(np.zeros((0, 1, 32, 32)))


def test_other_image_sizes_are_resized_with_a_warning(trained_run: Path, toy_h5: Path):
    images, _ = _test_images(toy_h5)
    predictor = Predictor.from_checkpoint(trained_run)
    bigger = torch.nn.functional.interpolate(torch.from_numpy(images), size=(48, 48)).numpy()
    with pytest.warns(UserWarning, match="resizing 48x48 images to the model's 32x32"):
        proba = predictor.predict_proba(bigger)
    assert proba.shape == (len(images), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict_proba(images)  # native size: no warning


def test_tta_averages_the_dihedral_views_and_is_invariant(trained_run: Path, toy_h5: Path):
    images, _ = _test_images(toy_h5)
    plain = Predictor.from_checkpoint(trained_run)
    views = [np.rot90(images, k, axes=(-2, -1)) for k in range(4)]
    views += [np.flip(v, axis=-1) for v in views]
    expected = np.mean([plain.predict_proba(np.ascontiguousarray(v)) for v in views], axis=0)
    tta = Predictor.from_checkpoint(trained_run, tta=True)
    np.testing.assert_allclose(tta.predict_proba(images), expected, rtol=1e-5, atol=1e-7)
    rotated = np.ascontiguousarray(np.rot90(images, 1, axes=(-2, -1)))
    np.testing.assert_allclose(tta.predict_proba(rotated), tta.predict_proba(images), atol=1e-6)
    np.testing.assert_allclose(plain.predict_proba(images, tta=True), expected, atol=1e-7)


def test_dataset_statistics_from_the_checkpoint_are_applied(tmp_path: Path):
    torch.manual_seed(0)
    model = create_model("deeplense_cnn", in_chans=2, num_classes=2, img_size=16).eval()
    mean, std = [3.0, -1.0], [2.0, 0.5]
    meta = {
        "model": {
            "name": "deeplense_cnn",
            "kwargs": {"in_chans": 2, "num_classes": 2, "img_size": 16},
        },
        "preprocessing": {
            "normalization": "dataset",
            "mean": mean,
            "std": std,
            "img_size": 16,
            "in_chans": 2,
        },
        "class_names": ["lens", "non_lens"],
    }
    save_checkpoint(tmp_path / "best", model, meta)
    images = np.random.default_rng(1).normal(size=(5, 2, 16, 16)).astype(np.float32)
    standardised = (images - np.array(mean).reshape(1, 2, 1, 1)) / np.array(std).reshape(1, 2, 1, 1)
    with torch.no_grad():
        expected = _softmax(model(torch.from_numpy(standardised.astype(np.float32))).numpy())
    predictor = Predictor.from_checkpoint(tmp_path)
    np.testing.assert_allclose(predictor.predict_proba(images), expected, rtol=1e-5, atol=1e-6)
    # a 3-D array with as many planes as the model's channels is one multi-channel image
    np.testing.assert_allclose(predictor.predict_proba(images[0]), expected[:1], rtol=1e-5)
    assert list(predictor.predict_labels(images)) == [
        ["lens", "non_lens"][k] for k in expected.argmax(1)
    ]
