"""Render a dataset block by block, in this process or in worker processes, results in order.

Shared by every simulation engine. A *block function* ``fn(renderer, seed, start, stop, *args)``
returns whatever the engine stores for images start..stop-1; blocks are handed to ``store`` in
index order (so file bytes never depend on which worker finished first). Worker processes are
forked where the platform allows (as torch's DataLoader does: milliseconds to start), run one torch
thread each, and build their own renderer from ``type(renderer)`` and ``renderer.config``.
:func:`write_rendered_dataset` is the engines' common path from blocks to a dataset file.
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

BlockFn = Callable[..., Any]
_worker_renderer: Any = None


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


def _init_worker(renderer_type: type, config_type: type, config_dict: dict) -> None:
    global _worker_renderer
    torch.set_num_threads(1)
    _worker_renderer = renderer_type(config_type.from_dict(config_dict))


def _worker_block(fn: BlockFn, seed: int, start: int, stop: int, args: tuple) -> Any:
    assert _worker_renderer is not None, "worker not initialised"
    return fn(_worker_renderer, seed, start, stop, *args)


def render_blocks(
    renderer: Any,
    fn: BlockFn,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    workers: int,
    store: Callable[[int, Any], None],
    block_args: Callable[[int, int], tuple] = lambda start, stop: (),
) -> None:
    """For each block, in order: ``store(start, fn(renderer, seed, start, stop, *args))`` with
    ``args = block_args(start, stop)``."""
    workers = worker_count(workers, len(blocks))
    if workers == 1:
        for start, stop in blocks:
            store(start, fn(renderer, seed, start, stop, *block_args(start, stop)))
        return
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    config = renderer.config
    queue = iter(blocks)
    pending: dict[int, Future] = {}
    init_args = (type(renderer), type(config), config.to_dict())
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=init_args
    ) as pool:

        def top_up() -> None:
            while len(pending) < 2 * workers:
                block = next(queue, None)
                if block is None:
                    return
                start, stop = block
                args = block_args(start, stop)
                pending[start] = pool.submit(_worker_block, fn, seed, start, stop, args)

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
    check_device(device)
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def check_device(device: str) -> None:
    """Raise ValueError for a device name torch does not know or a GPU that is not there."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {device!r}: use cpu or cuda (cuda:N)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is visible; use cpu")
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported here: use cpu or cuda")


def worker_count(requested: int, n_blocks: int) -> int:
    """Workers actually started: never more than there are blocks to render or CPU cores."""
    return max(1, min(requested, n_blocks, os.cpu_count() or 1))


def write_rendered_dataset(
    out: str | Path,
    renderer: Any,
    fn: BlockFn,
    *,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    workers: int,
    labels: np.ndarray,
    split_codes: np.ndarray,
    image_shape: tuple[int, ...],
    manifest: Mapping[str, Any],
    truth_columns: Mapping[str, tuple[tuple[int, ...], str]],
    extra_inputs: Mapping[str, tuple[int, ...]] | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Render ``blocks`` with ``fn(renderer, seed, start, stop, labels[start:stop])`` into a
    dataset file at ``out`` (written atomically), classes ``renderer.config.class_names``.

    ``fn`` returns ``(images, truth)`` or ``(images, truth, extra inputs)`` for its block;
    ``progress`` is called with the number of images finished after each block.
    """
    n = len(labels)
    t0 = time.perf_counter()
    with DatasetWriter(
        out,
        n,
        image_shape,
        renderer.config.class_names,
        manifest=manifest,
        truth_columns=truth_columns,
        extra_inputs=extra_inputs,
        overwrite=overwrite,
    ) as writer:

        def store(start: int, block: tuple) -> None:
            images, truth, *inputs = block
            stop = start + len(images)
            extra = inputs[0] if inputs else None
            writer.write(start, images, labels[start:stop], split_codes[start:stop], truth, extra)
            if progress is not None:
                progress(len(images))

        render_blocks(
            renderer,
            fn,
            seed,
            blocks,
            workers,
            store,
            block_args=lambda start, stop: (labels[start:stop],),
        )
    return SimulationResult(Path(out), n, time.perf_counter() - t0)
