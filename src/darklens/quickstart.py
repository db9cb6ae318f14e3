"""The README's main job: simulate a small Model II dataset, train the default model, evaluate it.

Every step writes into one folder, and a second call reuses what is already there: the dataset
when its manifest matches, the training run by resuming it (so an interrupted quickstart continues
from its last finished epoch), and the evaluation is redone.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darklens.config import Config, require
from darklens.runs import STATE, WEIGHTS_SUFFIX
from darklens.train.callbacks import Callback


@dataclass(frozen=True)
class QuickstartConfig(Config):
    """Settings of the quickstart (defaults: ≈ 5–8 minutes on a 2-core CPU)."""

    preset: str = "model_ii"
    n_per_class: int = 2500
    seed: int = 0
    workers: int = 2
    model: str = "default"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    device: str = "auto"

    def __post_init__(self) -> None:
        require(self.n_per_class >= 20, "n_per_class must be >= 20 (val/test need examples)")
        require(self.epochs >= 1 and self.batch_size >= 2, "need epochs >= 1 and batch_size >= 2")
        require(self.workers >= 1, "workers must be >= 1")


@dataclass(frozen=True)
class QuickstartResult:
    dataset: Path
    gallery: Path
    run_dir: Path
    report: Path
    metrics: dict[str, Any]
    seconds: dict[str, float]


def _dataset_matches(path: Path, config: QuickstartConfig, sim_config) -> bool:
    from darklens.data.h5 import DatasetFormatError, LensDataset

    if not path.is_file():
        return False
    try:
        manifest = LensDataset(path).manifest
    except (DatasetFormatError, OSError):
        return False
    return (
        manifest.get("config") == sim_config.to_dict()
        and manifest.get("seed") == config.seed
        and manifest.get("n_per_class") == config.n_per_class
    )


def run_quickstart(
    out_dir: str | Path,
    config: QuickstartConfig = QuickstartConfig(),
    say: Callable[[str], None] = print,
    callbacks: Sequence[Callback] = (),
) -> QuickstartResult:
    """Simulate → gallery → train (or resume) → evaluate on the test split → report.html.

    ``say`` gets one line per step; ``callbacks`` see the training (e.g. a progress bar).
    """
    from darklens.data.gallery import write_gallery
    from darklens.evaluate.report import REPORT_FILE
    from darklens.evaluate.run import evaluate_checkpoint
    from darklens.simulate.api import simulate
    from darklens.simulate.substructure.presets import get_preset
    from darklens.train.config import TrainConfig
    from darklens.train.trainer import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    sim_config = get_preset(config.preset)
    dataset = out / "data" / f"{config.preset}.h5"

    t0 = time.perf_counter()
    if _dataset_matches(dataset, config, sim_config):
        say(f"1/4 dataset: reusing {dataset}")
    else:
        n = config.n_per_class * len(sim_config.class_names)
        say(f"1/4 simulating {n:,} {config.preset} images → {dataset}")
        result = simulate(
            sim_config,
            dataset,
            n_per_class=config.n_per_class,
            split=(0.8, 0.1, 0.1),
            seed=config.seed,
            workers=config.workers,
            overwrite=True,
        )
        say(f"    {result.images_per_second:,.0f} images/s")
    gallery = write_gallery(dataset, out / "gallery.png")
    seconds["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run_dir = out / "runs" / config.model
    train_config = TrainConfig(
        data=str(dataset),
        model=config.model,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        schedule="cosine",
        warmup_epochs=1 if config.epochs > 1 else 0,
        seed=config.seed,
        device=config.device,
    )
    resumable = (run_dir / f"{STATE}{WEIGHTS_SUFFIX}").is_file()
    if run_dir.exists() and not resumable:
        shutil.rmtree(run_dir)  # a run that never finished its first epoch: start it again
    say(
        f"2/4 {'resuming' if resumable else 'training'} {config.model} for {config.epochs} "
        f"epochs → {run_dir}"
    )
    trained = train(train_config, None, run_dir, resume=resumable, callbacks=callbacks)
    say(f"    best validation macro AUC {trained.best_val_auc:.4f} (epoch {trained.best_epoch})")
    seconds["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report_dir = out / "report"
    say(f"3/4 evaluating the best checkpoint on the test split → {report_dir}")
    metrics = evaluate_checkpoint(
        [trained.best_checkpoint], dataset, report_dir, split="test", device=config.device
    )
    seconds["evaluate"] = time.perf_counter() - t0
    return QuickstartResult(dataset, gallery, run_dir, report_dir / REPORT_FILE, metrics, seconds)
