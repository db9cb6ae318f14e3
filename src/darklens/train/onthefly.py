"""Training on images simulated on the fly: fresh batches rendered on the training device.

The training images of a run are an endless simulated stream: batch k of epoch e holds the images
e·N + k·B … e·N + (k+1)·B − 1 of the stream seeded by the run's seed (N = steps per epoch · B), with
label i mod n_classes, so a batch depends only on (seed, e, k) — a resumed run sees exactly the
batches an uninterrupted one would. Validation and test images come from a file simulated once
into the run folder from a different seed (:func:`prepare_eval_set`), so they never repeat a
training image and every epoch is scored on the same images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.config import ConfigError
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.kinds import SimulatorKind, SizeRequest, kind_of
from darklens.train.config import TrainConfig

EVAL_FILE = "simulated_eval.h5"
_EVAL_SEED_OFFSET = 1_000_003  # the eval set's simulator seed = run seed + this
_STATS_IMAGES = 1024  # images rendered for dataset statistics (normalization="dataset")

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor]


def simulator_config(config: TrainConfig) -> Any:
    """The simulator config of an on-the-fly run: its preset with its overrides."""
    return resolve_config(config.simulate.preset, overrides=config.simulate.overrides or None)


def eval_set_path(run_dir: Path) -> Path:
    return Path(run_dir) / EVAL_FILE


def prepare_eval_set(config: TrainConfig, run_dir: Path, resume: bool) -> Path:
    """The run's fixed validation + test file (half each), simulated unless resuming with it."""
    path = eval_set_path(run_dir)
    if resume and path.is_file():
        return path
    sim = simulator_config(config)
    n = config.simulate.eval_images * 2
    n_classes = len(sim.class_names)
    size: dict[str, Any] = {"n": n, "lens_fraction": (0.5, 0.5, 0.5)}
    try:
        kind_of(sim).count(sim, SizeRequest(n=n, lens_fraction=(0.5, 0.5, 0.5)))
    except ConfigError:
        size = {"n_per_class": -(-n // n_classes)}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    simulate(
        sim,
        path,
        split=(0.0, 0.5, 0.5),
        seed=config.seed + _EVAL_SEED_OFFSET,
        overwrite=True,
        **size,
    )
    return path


class SimulatedSplit:
    """The training split of an on-the-fly run: ``batches`` renders each batch on ``device``.

    ``labels`` are one epoch's labels (class-balanced), which the trainer uses for class
    weights and for the epoch plan; only the plan's batch sizes matter here.
    """

    def __init__(
        self,
        config: TrainConfig,
        device: torch.device,
        extras: Sequence[str] = (),
        world_size: int = 1,
    ) -> None:
        if world_size > 1:
            raise ConfigError("on-the-fly simulation trains in one process; drop torchrun/DDP")
        self.sim_config = simulator_config(config)
        self.kind: SimulatorKind = kind_of(self.sim_config)
        self.renderer = self.kind.renderer(self.sim_config, device)
        self.seed = config.seed
        self.extras = tuple(extras)
        self.n_classes = len(self.sim_config.class_names)
        self.per_epoch = config.simulate.steps_per_epoch * config.batch_size
        self.labels = np.arange(self.per_epoch) % self.n_classes

    def __len__(self) -> int:
        return self.per_epoch

    def render(self, start: int, stop: int) -> Batch:
        """Images start..stop-1 of the run's stream as tensors (inputs in the model's order)."""
        labels = np.arange(start, stop) % self.n_classes
        block = self.kind.render_block(self.renderer, self.seed, start, stop, labels)
        extras = [torch.from_numpy(block.inputs[name].astype(np.float32)) for name in self.extras]
        return (torch.from_numpy(block.images), *extras), torch.from_numpy(labels)

    def batches(self, plan: Sequence[np.ndarray], epoch: int = 0) -> Iterator[Batch]:
        start = epoch * self.per_epoch
        for positions in plan:
            yield self.render(start, start + len(positions))
            start += len(positions)

    def blocks(self) -> Iterator[torch.Tensor]:
        yield self.render(0, min(_STATS_IMAGES, self.per_epoch))[0][0]
