"""ONNX export: onnxruntime agrees with torch, the spec reproduces the preprocessing, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.models import create_model
from darklens.predict import Predictor, onnx_export
from darklens.predict.onnx_export import OnnxMismatchError, export_onnx
from darklens.runs import save_checkpoint

SIZE = 32
CLASSES = ["no_sub", "cdm", "axion"]
# Must export: the community baseline and the default backbone.
REQUIRED_MODELS = ("deeplense_cnn", "resnet18")
# Exported when torch's TorchScript exporter can; otherwise skipped with its reason.
OPTIONAL_MODELS = ("cmu_deeplens", "resnet18_cbam", "convnextv2_atto", "vit_tiny", "lastro_cnn")
runner = CliRunner()


def _random_checkpoint(name: str, folder: Path, normalization: str = "minmax") -> Path:
    torch.manual_seed(0)
    kwargs = {"in_chans": 1, "num_classes": len(CLASSES), "img_size": SIZE}
    model = create_model(name, **kwargs)
    meta = {
        "model": {"name": name, "kwargs": kwargs},
        "preprocessing": {
            "normalization": normalization,
            "mean": [0.5] if normalization == "dataset" else None,
            "std": [2.0] if normalization == "dataset" else None,
            "img_size": SIZE,
            "in_chans": 1,
            "data_image_shape": [SIZE, SIZE],
        },
        "class_names": CLASSES,
    }
    save_checkpoint(folder / "best", model, meta)
    return folder


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _torch_proba(run: Path, x: np.ndarray) -> np.ndarray:
    model = Predictor.from_checkpoint(run).model_
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()


def _check_model(name: str, tmp_path: Path) -> None:
    run = _random_checkpoint(name, tmp_path / name)
    try:
        result = export_onnx(run, tmp_path / f"{name}.onnx")
    except ValueError as err:
        if name in REQUIRED_MODELS or "cannot export" not in str(err):
            raise
        pytest.skip(f"{name}: {err}")
    assert result.max_abs_diff < onnx_export.AGREEMENT_TOLERANCE
    x = np.random.default_rng(1).random((5, 1, SIZE, SIZE), dtype=np.float32)  # any batch size
    got = _session(result.model_path).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, _torch_proba(run, x), atol=1e-4)


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_required_models_export_and_agree(name, tmp_path):
    _check_model(name, tmp_path)


@pytest.mark.parametrize("name", OPTIONAL_MODELS)
def test_other_models_export_and_agree_where_torch_can(name, tmp_path):
    _check_model(name, tmp_path)


@pytest.mark.parametrize(("n_in", "n_out"), [(2, 4), (9, 4), (8, 5), (7, 3), (6, 6), (5, 1)])
def test_matrix_pool_equals_adaptive_average_pooling(n_in, n_out):
    x = torch.randn(2, 3, n_in, n_in + 1, generator=torch.Generator().manual_seed(n_in))
    pool = onnx_export.MatrixAdaptiveAvgPool2d((n_in, n_in + 1), (n_out, n_out))
    expected = torch.nn.functional.adaptive_avg_pool2d(x, n_out)
    torch.testing.assert_close(pool(x), expected, rtol=1e-6, atol=1e-6)


def test_only_pools_the_exporter_refuses_are_replaced():
    def pools(model):
        return [type(m).__name__ for m in model.modules() if "Pool2d" in type(m).__name__]

    for size, expected in ((64, "AdaptiveAvgPool2d"), (32, "MatrixAdaptiveAvgPool2d")):
        model = create_model("deeplense_cnn", in_chans=1, num_classes=3, img_size=size).eval()
        example = torch.randn(2, 1, size, size)
        copy = onnx_export.exportable_copy(model, example)
        assert pools(copy)[-1] == expected and pools(model)[-1] == "AdaptiveAvgPool2d"
        with torch.no_grad():
            torch.testing.assert_close(copy(example), model(example), rtol=1e-5, atol=1e-6)


def test_spec_reproduces_the_predictor_on_raw_images(trained_run, toy_h5, tmp_path):
    result = export_onnx(trained_run, tmp_path / "cnn.onnx")
    spec = json.loads(result.spec_path.read_text())
    assert result.spec_path == tmp_path / "cnn.onnx.json"
    assert spec["class_names"] == CLASSES
    assert spec["input"]["shape"] == ["batch", 1, SIZE, SIZE]
    assert spec["sha256"] == hashlib.sha256(result.model_path.read_bytes()).hexdigest()
    assert spec["preprocessing"]["normalization"] == "minmax"
    with LensDataset(toy_h5) as dataset:
        images = dataset.images(dataset.split_indices("test")).astype(np.float64)
    # the spec's steps done in numpy: the size already matches, then per-image min-max
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    x = ((images - low) / (high - low)).astype(np.float32)
    got = _session(result.model_path).run(["probabilities"], {"image": x})[0]
    expected = Predictor.from_checkpoint(trained_run).predict_proba(images)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_static_batch_and_default_path(trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.json", "best.safetensors"):
        (run / name).write_bytes((trained_run / name).read_bytes())
    result = export_onnx(run, dynamic_batch=False)
    assert result.model_path == run / "best.onnx"
    assert (run / "best.onnx.json").is_file() and (run / "best.json").is_file()
    session = _session(result.model_path)
    one = np.zeros((1, 1, SIZE, SIZE), np.float32)
    assert session.run(None, {"image": one})[0].shape == (1, 3)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"image": np.zeros((2, 1, SIZE, SIZE), np.float32)})


def test_disagreement_is_caught_and_nothing_written(trained_run, tmp_path, monkeypatch):
    real_export = onnx_export.export_to_bytes

    def export_another_model(model, example, **options):
        other = create_model("deeplense_cnn", in_chans=1, num_classes=3, img_size=SIZE).eval()
        return real_export(other, example, **options)

    monkeypatch.setattr(onnx_export, "export_to_bytes", export_another_model)
    with pytest.raises(OnnxMismatchError, match="disagrees with torch"):
        export_onnx(trained_run, tmp_path / "wrong.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_errors(trained_run, tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(trained_run, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="opset must be an integer >= 11"):
        export_onnx(trained_run, tmp_path / "model.onnx", opset=9)
    export_onnx(trained_run, tmp_path / "model.onnx")
    with pytest.raises(FileExistsError, match="model.onnx exists"):
        export_onnx(trained_run, tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        export_onnx(tmp_path / "missing", tmp_path / "other.onnx")


def test_export_model_cli(trained_run, tmp_path):
    out = tmp_path / "cli.onnx"
    result = runner.invoke(
        app, ["export-model", str(trained_run), "--format", "onnx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "cli.onnx.json").is_file()
    wrong = runner.invoke(app, ["export-model", str(trained_run), "--format", "tflite"])
    assert wrong.exit_code == 2 and "unknown export format 'tflite'" in wrong.output
