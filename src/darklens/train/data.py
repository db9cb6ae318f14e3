"""Feeding a darklens dataset split to the training loop, in batches of CPU tensors.

A split that fits comfortably in RAM is read once into one tensor (:class:`MemorySplit`): batches
are then plain indexing, which keeps data loading a small fraction of the step time. Larger splits
are read lazily, one sorted HDF5 read per batch, in DataLoader worker processes
(:class:`LazySplit`). A batch is ``(inputs, labels)`` where ``inputs`` is a tuple: the images
first, then the model's extra inputs (e.g. light curves), in the model's order. Which batches an
epoch visits is decided by pure functions of ``(seed, epoch)``, so the order does not depend on
process history and a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from darklens.data.h5 import LensDataset
from darklens.data.transforms import border_noise_sigma, center_crop, channel_stats

MEMORY_FRACTION = 0.25  # load a split into RAM when it needs less than this share of free memory
DEVICE_MEMORY_FRACTION = 0.25  # ... and onto the GPU when it needs less than this share of its free

_STATS_BLOCK = 1024

Inputs = tuple[torch.Tensor, ...]
Batch = tuple[Inputs, torch.Tensor]


class TargetReader(Protocol):
    """What a batch's targets are, when they are not the class labels (regression, denoising):
    a picklable callable of the dataset and the rows (sorted dataset indices)."""

    def __call__(self, dataset: LensDataset, rows: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class TableTargets:
    """Regression targets computed beforehand for every row of the dataset ([N, T] float32)."""

    table: np.ndarray

    def __call__(self, dataset: LensDataset, rows: np.ndarray) -> np.ndarray:
        return self.table[rows]


@dataclasses.dataclass(frozen=True)
class CleanImages:
    """The noiseless images stored beside the noisy ones (``/targets/clean``): denoising."""

    def __call__(self, dataset: LensDataset, rows: np.ndarray) -> np.ndarray:
        return dataset.clean_images(rows)


class MemorySplit:
    """A split held in memory as float32 tensors (host or GPU); ``positions`` index within the
    split. Held on a GPU, an epoch's batches are cut there from one upload of its plan; held on
    the host with ``pin``, batches are gathered into pinned memory so that their copy to the GPU
    does not wait for it."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: np.ndarray,
        extras: Sequence[torch.Tensor] = (),
        pin: bool = False,
    ) -> None:
        self.images = images
        self.labels = labels
        self.extras = tuple(extras)
        self.pin = pin
        self._labels = torch.from_numpy(np.asarray(labels)).to(images.device)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in (self.images, *self.extras))

    def to(self, device: torch.device) -> MemorySplit:
        """The same split with its tensors on ``device``."""
        moved = [t.to(device) for t in (self.images, *self.extras)]
        return MemorySplit(moved[0], self.labels, moved[1:], self.pin)

    def batches(self, plan: Sequence[np.ndarray], epoch: int = 0) -> Iterator[Batch]:
        """The plan's batches (``epoch`` is unused: a file split is the same every epoch)."""
        device = self.images.device
        if not plan:
            return
        sizes = [len(p) for p in plan]
        everything = torch.from_numpy(np.concatenate(plan)).to(device)
        for index in torch.split(everything, sizes):
            inputs = (self.images[index], *(x[index] for x in self.extras))
            labels = self._labels[index]
            if self.pin and device.type == "cpu":
                inputs, labels = tuple(t.pin_memory() for t in inputs), labels.pin_memory()
            yield inputs, labels

    def blocks(self) -> Iterator[torch.Tensor]:
        yield self.images.cpu()


class _BatchReader(Dataset):
    """Dataset whose items are whole batches, so each worker does one HDF5 read per batch."""

    def __init__(
        self,
        dataset: LensDataset,
        indices: np.ndarray,
        plan: Sequence[np.ndarray],
        extras: Sequence[str] = (),
        targets: TargetReader | None = None,
    ):
        self.dataset = dataset
        self.indices = indices
        self.plan = list(plan)
        self.extras = tuple(extras)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, item: int) -> Batch:
        rows = self.indices[self.plan[item]]
        inputs = (self.dataset.images(rows), *(self.dataset.inputs(n, rows) for n in self.extras))
        tensors = tuple(map(torch.from_numpy, inputs))
        check_finite(self.dataset, tensors[0], rows)
        if self.targets is not None:
            return tensors, torch.from_numpy(np.asarray(self.targets(self.dataset, rows)))
        return tensors, torch.from_numpy(self.dataset.labels[rows])


class LazySplit:
    """A split read from the HDF5 file batch by batch, in ``num_workers`` worker processes."""

    def __init__(
        self,
        dataset: LensDataset,
        indices: np.ndarray,
        num_workers: int,
        pin_memory: bool,
        extras: Sequence[str] = (),
        targets: TargetReader | None = None,
    ) -> None:
        self.extras = tuple(extras)
        self.targets = targets
        self.dataset = dataset
        self.indices = indices
        self.labels = dataset.labels[indices]
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, plan: Sequence[np.ndarray], epoch: int = 0) -> Iterator[Batch]:
        """The plan's batches (``epoch`` is unused: a file split is the same every epoch)."""
        loader = DataLoader(
            _BatchReader(self.dataset, self.indices, plan, self.extras, self.targets),
            batch_size=None,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(0),  # leave the global RNG (dropout) alone
        )
        yield from loader

    def blocks(self) -> Iterator[torch.Tensor]:
        for start in range(0, len(self.indices), _STATS_BLOCK):
            rows = self.indices[start : start + _STATS_BLOCK]
            yield torch.from_numpy(self.dataset.images(rows))


SplitData = MemorySplit | LazySplit


def available_memory_bytes() -> int:
    """Memory the system can give this process now (MemAvailable on Linux)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def open_split(
    dataset: LensDataset,
    split: str,
    in_memory: bool | str = "auto",
    num_workers: int = 0,
    pin_memory: bool = False,
    extras: Sequence[str] = (),
    targets: TargetReader | None = None,
    keep: np.ndarray | None = None,
) -> SplitData:
    """The images of ``split`` (and the extra inputs named in ``extras``), in memory or lazy
    (``in_memory="auto"`` decides by size).

    ``num_workers`` and ``pin_memory`` apply to the lazy DataLoader only. ``targets`` gives the
    batches' targets instead of the labels; ``keep`` (a mask over the dataset's rows) leaves
    rows out (e.g. those without a regression target).
    """
    indices = dataset.split_indices(split)
    if keep is not None:
        indices = indices[keep[indices]]
    if len(indices) == 0:
        counts = {name: len(dataset.split_indices(name)) for name in dataset.split_names}
        raise ValueError(
            f"split {split!r} of {dataset.path} is empty (images per split: {counts}); "
            "choose other splits (train_split / val_split)"
        )
    for name in extras:
        if name not in dataset.input_names:
            available = ", ".join(dataset.input_names) or "none"
            raise ValueError(
                f"the model needs the extra input {name!r}, which {dataset.path} does not hold "
                f"(its extra inputs: {available})"
            )
    if in_memory == "auto":
        per_example = int(np.prod(dataset.image_shape)) + sum(
            int(np.prod(dataset.input_shape(name))) for name in extras
        )
        if isinstance(targets, CleanImages):
            per_example += int(np.prod(dataset.image_shape))
        in_memory = len(indices) * per_example * 4 < MEMORY_FRACTION * available_memory_bytes()
    if not in_memory:
        return LazySplit(dataset, indices, num_workers, pin_memory, extras, targets)
    images = torch.from_numpy(dataset.images(indices))
    check_finite(dataset, images, indices)
    return MemorySplit(
        images,
        dataset.labels[indices] if targets is None else np.asarray(targets(dataset, indices)),
        [torch.from_numpy(dataset.inputs(name, indices).astype(np.float32)) for name in extras],
        pin=pin_memory,
    )


def check_finite(dataset: LensDataset, images: torch.Tensor, indices: np.ndarray) -> None:
    """Raise ValueError naming the file and the first image whose pixels are NaN or infinite
    (rather than letting training report a divergence that the data caused)."""
    finite = torch.isfinite(images.reshape(len(images), -1)).all(dim=1)
    if bool(finite.all()):
        return
    bad = torch.nonzero(~finite).flatten()
    raise ValueError(
        f"{dataset.path}: {len(bad)} image(s) hold NaN or infinite pixels (first: index "
        f"{int(indices[int(bad[0])])}); fix or drop them (`darklens check {dataset.path}` lists "
        "every problem)"
    )


def on_device_if_it_fits(data: SplitData, device: torch.device) -> SplitData:
    """An in-memory split moved onto a GPU ``device`` when it takes less than
    :data:`DEVICE_MEMORY_FRACTION` of the GPU's free memory; otherwise unchanged."""
    if not isinstance(data, MemorySplit) or device.type != "cuda":
        return data
    free_bytes, _ = torch.cuda.mem_get_info(device)
    return data.to(device) if data.nbytes < DEVICE_MEMORY_FRACTION * free_bytes else data


def split_channel_stats(
    data: SplitData, crop: int | None = None
) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of a split's raw images (their central ``crop``
    pixels when given: the part the model sees)."""
    blocks = data.blocks()
    if crop is not None:
        blocks = (center_crop(torch.as_tensor(block), crop) for block in blocks)
    return channel_stats(blocks)


def split_noise_sigma(data: SplitData) -> list[float]:
    """Per-channel sky noise of a split's raw images (the asinh softening)."""
    return border_noise_sigma(data.blocks())


# -- epoch plans ---------------------------------------------------------------------------------
def epoch_order(labels: np.ndarray, seed: int, epoch: int, balanced: bool = False) -> np.ndarray:
    """Positions visited in ``epoch``: a permutation, or with ``balanced`` a draw with replacement
    in which every class is equally likely. Depends only on ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    n = len(labels)
    if not balanced:
        return rng.permutation(n)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    return rng.choice(n, size=n, replace=True, p=weights / weights.sum())


def curriculum_quantiles(
    values: np.ndarray, labels: np.ndarray, easier: str = "larger"
) -> np.ndarray:
    """Each example's difficulty quantile within its class, in [0, 1) (0: the easiest), from a
    truth column ``values``; ``easier`` says whether ``larger`` or ``smaller`` values are easier.
    NaN marks examples every epoch keeps: a NaN value, or a class whose values are all equal
    (e.g. the non-lenses' arc S/N of 0). Ties keep the examples' order."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) != len(labels):
        raise ValueError(f"need one curriculum value per example, got shape {values.shape}")
    key = -values if easier == "larger" else values
    out = np.full(len(values), np.nan)
    for label in np.unique(labels):
        rows = np.flatnonzero((labels == label) & np.isfinite(values))
        if len(rows) == 0 or np.all(values[rows] == values[rows[0]]):
            continue
        ranks = np.empty(len(rows))
        ranks[np.argsort(key[rows], kind="stable")] = np.arange(len(rows))
        out[rows] = ranks / len(rows)
    return out


def curriculum_fraction(epoch: int, start: float, epochs: int) -> float:
    """Share of each class's easiest examples trained on in ``epoch``: ``start`` at epoch 0,
    rising linearly to all of them at ``epochs``."""
    if epochs <= 0 or epoch >= epochs:
        return 1.0
    return start + (1.0 - start) * epoch / epochs


def curriculum_order(order: np.ndarray, quantiles: np.ndarray, fraction: float) -> np.ndarray:
    """``order`` keeping the examples below the ``fraction`` quantile of their class (and those
    always kept), repeated in the same order to the epoch's full length, so that the epoch has
    as many steps as without the curriculum and the learning-rate schedule is unchanged."""
    if fraction >= 1.0:
        return order
    keep = np.isnan(quantiles) | (quantiles < fraction)
    kept = order[keep[order]]
    if len(kept) == 0:
        raise ValueError("the curriculum keeps no training example; raise curriculum_start")
    return np.resize(kept, len(order))


def shard(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's share of ``order``; wrapped around so all ranks get the same count."""
    if world_size == 1:
        return order
    per_rank = -(-len(order) // world_size)
    padded = np.resize(order, per_rank * world_size)
    return padded[rank::world_size]


def batch_plan(
    positions: np.ndarray, batch_size: int, drop_single: bool = False
) -> list[np.ndarray]:
    """Split positions into batches; ``drop_single`` drops a trailing batch of one image
    (batch-norm cannot train on it)."""
    plan = [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]
    if drop_single and len(plan) > 1 and len(plan[-1]) == 1:
        plan.pop()
    return plan
