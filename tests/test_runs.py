"""Checkpoints: safetensors + JSON sidecar, atomic writes, integrity checks, resume state."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from darklens import runs as ckpt
from darklens.models import create_model
from darklens.runs import CheckpointError, load_checkpoint, save_checkpoint

KWARGS = {"in_chans": 1, "num_classes": 3, "img_size": 16, "dropout": 0.0}


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("deeplense_cnn", **KWARGS).eval()


def _meta(**extra) -> dict:
    return {
        "model": {"name": "deeplense_cnn", "kwargs": dict(KWARGS)},
        "preprocessing": {
            "normalization": "minmax",
            "mean": None,
            "std": None,
            "img_size": 16,
            "in_chans": 1,
        },
        "class_names": ["no_sub", "cdm", "axion"],
        "epoch": 3,
        "val_metrics": {"auc": 0.9, "loss": float("nan")},
        **extra,
    }


def test_round_trip_restores_identical_outputs(tmp_path: Path):
    model = _model()
    json_path = save_checkpoint(tmp_path / "best", model, _meta())
    assert json_path == tmp_path / "best.json"
    assert (tmp_path / "best.safetensors").is_file()
    loaded, meta = load_checkpoint(tmp_path)  # run folder, default which="best"
    assert not loaded.training
    x = torch.rand(4, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert meta["format"] == "darklens-checkpoint" and meta["version"] == 1
    assert meta["class_names"] == ["no_sub", "cdm", "axion"]
    assert meta["val_metrics"]["loss"] is None  # NaN stored as JSON null, the file stays valid JSON
    assert "darklens_version" in meta and len(meta["weights"]["sha256"]) == 64
    json.loads(json_path.read_text())  # strict JSON


@pytest.mark.parametrize("form", ["stem", "json", "safetensors"])
def test_checkpoint_path_forms(tmp_path: Path, form: str):
    save_checkpoint(tmp_path / "last", _model(), _meta())
    path = {
        "stem": tmp_path / "last",
        "json": tmp_path / "last.json",
        "safetensors": tmp_path / "last.safetensors",
    }[form]
    _, meta = load_checkpoint(path)
    assert meta["epoch"] == 3


def test_missing_checkpoint_names_what_exists(tmp_path: Path):
    save_checkpoint(tmp_path / "last", _model(), _meta())
    with pytest.raises(FileNotFoundError, match="it has: last"):
        load_checkpoint(tmp_path, which="best")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nope")


def test_truncated_weights_are_detected(tmp_path: Path):
    save_checkpoint(tmp_path / "best", _model(), _meta())
    weights = tmp_path / "best.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="does not match best.json"):
        load_checkpoint(tmp_path)


def test_weights_from_another_save_are_detected(tmp_path: Path):
    """As after a crash between replacing the weights and replacing the JSON."""
    save_checkpoint(tmp_path / "best", _model(0), _meta())
    save_checkpoint(tmp_path / "other", _model(1), _meta())
    os.replace(tmp_path / "other.safetensors", tmp_path / "best.safetensors")
    with pytest.raises(CheckpointError, match="sha256 differs"):
        load_checkpoint(tmp_path / "best")


def test_missing_weights_file_is_reported(tmp_path: Path):
    save_checkpoint(tmp_path / "best", _model(), _meta())
    (tmp_path / "best.safetensors").unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path)


def test_unknown_model_is_a_clear_error(tmp_path: Path):
    meta = _meta()
    meta["model"]["name"] = "resnet9000"
    save_checkpoint(tmp_path / "best", _model(), meta)
    with pytest.raises(CheckpointError, match="resnet9000.*Known"):
        load_checkpoint(tmp_path)


def test_weights_that_do_not_fit_the_model_are_reported(tmp_path: Path):
    meta = _meta()
    meta["model"]["kwargs"]["num_classes"] = 5
    save_checkpoint(tmp_path / "best", _model(), meta)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "something-else"}, "not a darklens checkpoint"),
        ({"version": 99}, "upgrade darklens"),
    ],
)
def test_foreign_or_newer_json_is_refused(tmp_path: Path, change: dict, message: str):
    json_path = save_checkpoint(tmp_path / "best", _model(), _meta())
    data = json.loads(json_path.read_text())
    data.update(change)
    json_path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(tmp_path)


def test_meta_without_model_spec_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="model"):
        save_checkpoint(tmp_path / "best", _model(), {"class_names": []})
    assert not list(tmp_path.iterdir())


def test_interrupted_write_keeps_the_old_file_and_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    ckpt.atomic_write_bytes(target, b"old")

    def crash(*args, **kwargs):
        raise OSError("disk pulled out")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        ckpt.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_stale_temporaries_are_removed(tmp_path: Path):
    (tmp_path / ".best.safetensors.abc123.tmp").write_bytes(b"partial")
    (tmp_path / "keep.txt").write_text("x")
    ckpt.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def _adam_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 16, 16, generator=generator)
    y = torch.randint(0, 3, (6,), generator=generator)
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def test_train_state_round_trip_continues_identically(tmp_path: Path):
    model = _model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    for seed in range(2):
        _adam_step(model, optimizer, seed)
    written = ckpt.TrainState(
        {}, {}, {"model": "deeplense_cnn"}, ["a", "b", "c"], {"img_size": 32}, {"epoch": 2}
    )
    ckpt.save_train_state(tmp_path / "last_state", model, optimizer, written.json_state())

    state = ckpt.load_train_state(tmp_path / "last_state")
    assert state.progress == {"epoch": 2} and state.class_names == ["a", "b", "c"]
    assert state.train_config == {"model": "deeplense_cnn"} and state.scaler is None
    restored = create_model("deeplense_cnn", **KWARGS).train()
    restored.load_state_dict(state.model)
    restored_optimizer = torch.optim.AdamW(restored.parameters(), lr=5.0, weight_decay=0.0)
    restored_optimizer.load_state_dict(state.optimizer)
    assert restored_optimizer.param_groups[0]["lr"] == 1e-3

    _adam_step(model, optimizer, 7)
    _adam_step(restored, restored_optimizer, 7)
    for (name, a), b in zip(
        model.state_dict().items(), restored.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    readable = json.loads((tmp_path / "last_state.json").read_text())
    assert readable["format"] == "darklens-train-state"


def test_train_state_rejects_other_files(tmp_path: Path):
    save_checkpoint(tmp_path / "best", _model(), _meta())
    with pytest.raises(CheckpointError, match="no readable training state"):
        ckpt.load_train_state(tmp_path / "best")
    (tmp_path / "junk.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.load_train_state(tmp_path / "junk")
    with pytest.raises(FileNotFoundError, match="without --resume"):
        ckpt.load_train_state(tmp_path / "absent")
