"""Training and checkpoints against hostile inputs (issue 12, items 4 and 7)."""

from __future__ import annotations

import json
import shutil
import time

import h5py
import numpy as np
import pytest

from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.runs import CheckpointError, load_checkpoint
from darklens.train import TrainConfig, train


def test_checkpoint_with_a_huge_image_size_is_refused_before_building(trained_run, tmp_path):
    for name in ("best.json", "best.safetensors"):
        shutil.copy(trained_run / name, tmp_path / name)
    meta = json.loads((tmp_path / "best.json").read_text())
    meta["preprocessing"]["img_size"] = 60000
    meta["model"]["kwargs"]["img_size"] = 60000
    (tmp_path / "best.json").write_text(json.dumps(meta))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"img_size = 60000 \(expected 1\.\.4096\)"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="60000"):
        Predictor.from_checkpoint(tmp_path)
    assert time.perf_counter() - started < 5  # refused from the JSON, nothing was allocated


def test_nan_pixels_are_named_not_reported_as_divergence(toy_h5, tmp_path):
    data = shutil.copy(toy_h5, tmp_path / "nan.h5")
    with LensDataset(data) as ds:
        first_train = int(ds.split_indices("train")[0])
    with h5py.File(data, "r+") as f:
        f["images"][first_train, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match=rf"nan.h5: 1 image\(s\) hold NaN .*index {first_train}"):
        train(TrainConfig(model="deeplense_cnn", epochs=1, batch_size=8), data, tmp_path / "run")
    assert not (tmp_path / "run").exists()
