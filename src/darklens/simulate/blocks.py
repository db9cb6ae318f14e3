"""Render a dataset block by block, in this process or in worker processes, results in order.

Shared by every simulator kind (:mod:`darklens.simulate.kinds`): a kind's ``render_block`` makes
the :class:`~darklens.simulate.kinds.Block` of images start..stop-1; blocks are handed to ``store``
in index order (so file bytes never depend on which worker finished first). Worker processes are
forked where the platform allows (as torch's DataLoader does: milliseconds to start), run one torch
thread each, and build their own CPU renderer with the kind. :func:`write_rendered_dataset` is the
common path from blocks to a dataset file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.data.h5 import DatasetWriter
from darklens.device import resolve_device
from darklens.simulate.kinds import Block, Layout, SimulatorKind

_worker: tuple[Any, Any] | None = None  # (kind, renderer) of this worker process


@dataclass(frozen=True)
class SimulationResult:
    path: Path
    n_images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.n_images / self.seconds if self.seconds > 0 else float("inf")


@contextmanager
def one_cpu_thread(device: torch.device):
    """One intra-op thread on the CPU while rendering: every image then takes the same code path."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _init_worker(kind_name: str, config_dict: dict) -> None:
    global _worker
    from darklens.simulate.kinds import KINDS, simulator_kinds

    torch.set_num_threads(1)
    simulator_kinds()
    kind = KINDS.get(kind_name)
    _worker = (kind, kind.renderer(kind.config_type.from_dict(config_dict), "cpu"))


def _worker_block(seed: int, start: int, stop: int, labels: np.ndarray) -> Any:
    assert _worker is not None, "worker not initialised"
    kind, renderer = _worker
    return kind.render_block(renderer, seed, start, stop, labels)


def render_blocks(
    kind: SimulatorKind,
    renderer: Any,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    labels: np.ndarray,
    workers: int,
    store: Callable[[int, Block], None],
) -> None:
    """For each block, in order: ``store(start, kind.render_block(renderer, seed, start, stop,
    labels[start:stop]))``, rendered here or by ``workers`` forked processes (at most one per
    block and core)."""
    workers = worker_count(workers, len(blocks))
    if workers == 1:
        for start, stop in blocks:
            store(start, kind.render_block(renderer, seed, start, stop, labels[start:stop]))
        return
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    queue = iter(blocks)
    pending: dict[int, Future] = {}
    init_args = (kind.name, renderer.config.to_dict())
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=init_args
    ) as pool:

        def top_up() -> None:
            while len(pending) < 2 * workers:
                block = next(queue, None)
                if block is None:
                    return
                start, stop = block
                pending[start] = pool.submit(_worker_block, seed, start, stop, labels[start:stop])

        top_up()
        for start, _ in blocks:
            store(start, pending.pop(start).result())
            top_up()


def plan_blocks(
    n: int, batch_size: int, workers: int, device: str, what: str = "n"
) -> list[tuple[int, int]]:
    """Check a simulation's size and parallel settings; return its (start, stop) blocks."""
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")
    if workers < 1 or batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1")
    if device != "cpu" and workers > 1:
        raise ValueError("use --workers 1 with a GPU device: the GPU already renders in parallel")
    resolve_device(device)  # an unknown device or a missing GPU is a clear error
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def worker_count(requested: int, n_blocks: int) -> int:
    """Workers actually started: never more than there are blocks to render or CPU cores."""
    return max(1, min(requested, n_blocks, os.cpu_count() or 1))


def write_rendered_dataset(
    out: str | Path,
    kind: SimulatorKind,
    renderer: Any,
    *,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    workers: int,
    layout: Layout,
    manifest: Mapping[str, Any],
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Render ``blocks`` of the kind into a dataset file at ``out`` (written atomically).

    ``progress`` is called with the number of images finished after each block.
    """
    config = renderer.config
    n = len(layout.labels)
    extra_inputs = kind.extra_inputs(config)
    t0 = time.perf_counter()
    with DatasetWriter(
        out,
        n,
        kind.image_shape(config),
        config.class_names,
        manifest=manifest,
        truth_columns=kind.truth_columns(config),
        extra_inputs=extra_inputs or None,
        overwrite=overwrite,
    ) as writer:

        def store(start: int, block: Block) -> None:
            stop = start + len(block.images)
            writer.write(
                start,
                block.images,
                layout.labels[start:stop],
                layout.split_codes[start:stop],
                block.truth,
                block.inputs or None,
            )
            if progress is not None:
                progress(len(block.images))

        render_blocks(kind, renderer, seed, blocks, layout.labels, workers, store)
    return SimulationResult(Path(out), n, time.perf_counter() - t0)
