"""Multi-process training with PyTorch DDP on CPU (Gloo), launched through torchrun."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

import darklens
from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.train import TrainConfig

_RUNNER = """
import os, sys, torch
from pathlib import Path
torch.set_num_threads(1)
from darklens.train import TrainConfig, train
result = train(TrainConfig.from_yaml(sys.argv[1]), None, sys.argv[2])
report = Path(sys.argv[3]) / f"rank{os.environ['RANK']}.txt"
keys = ("train_loss", "train_acc", "val_loss", "val_auc")
metrics = [[row[k] for k in keys] for row in result.history]
report.write_text(f"{result.epochs_completed} {result.best_val_auc!r} {metrics!r}")
"""


def test_two_process_gloo_training_writes_a_sound_checkpoint(toy_h5: Path, tmp_path: Path):
    config_file = tmp_path / "train.yaml"
    TrainConfig(
        data=str(toy_h5), model="deeplense_cnn", epochs=2, batch_size=8, device="cpu"
    ).to_yaml(config_file)
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(_RUNNER))
    run_dir = tmp_path / "run"
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(darklens.__file__).parents[1]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(config_file),
        str(run_dir),
        str(tmp_path),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-3000:]

    rank0, rank1 = ((tmp_path / f"rank{r}.txt").read_text() for r in (0, 1))
    assert rank0 == rank1, "both ranks must reach the same metrics"
    assert rank0.startswith("2 ")

    predictor = Predictor.from_checkpoint(run_dir, which="last")
    meta = predictor.checkpoint_
    assert meta["epoch"] == 2 and math.isfinite(meta["val_metrics"]["auc"])
    # the validation AUC gathered across the two processes equals a single-process evaluation
    with LensDataset(toy_h5) as dataset:
        index = dataset.split_indices("val")
        images, labels = dataset.images(index), dataset.labels[index]
    proba = predictor.predict_proba(images)
    expected = roc_auc_score(labels, proba, multi_class="ovr", average="macro")
    assert np.isclose(meta["val_metrics"]["auc"], expected, atol=1e-6)
    assert sorted(p.name for p in run_dir.iterdir() if p.suffix == ".json") == [
        "best.json",
        "last.json",
        "last_state.json",
    ]
