"""Render a dataset block by block, in this process or in worker processes, results in order.

Shared by every simulator kind (:mod:`darklens.simulate.kinds`): a kind's ``render_block`` makes
the :class:`~darklens.simulate.kinds.Block` of images start..stop-1; blocks are handed to ``store``
in index order (so file bytes never depend on which worker finished first). Worker processes are
forked where the platform allows (as torch's DataLoader does: milliseconds to start), run one torch
thread each, and build their own CPU renderer with the kind. :func:`write_rendered_dataset` is the
common path from blocks to a dataset file, :func:`render_dataset_in_memory` the same into memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.data.h5 import DatasetWriter
from darklens.data.memory import ArrayWriter, InMemoryDataset
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
    first_index: int = 0,
) -> None:
    """For each block, in order: ``store(start, kind.render_block(renderer, seed, start, stop,
    labels[start - first_index:stop - first_index]))``, rendered here or by ``workers`` forked
    processes, at most one per block and core (``labels`` hold the images from ``first_index``
    on).

    On an accelerator, two threads render the next blocks while this one stores: one draws a
    block's parameters on the host while the device renders the other's, and the device works
    while the host writes (torch and NumPy release the GIL in their kernels and copies).
    """

    def own(start: int, stop: int) -> np.ndarray:
        return labels[start - first_index : stop - first_index]

    workers = worker_count(workers, len(blocks))
    on_accelerator = torch.device(getattr(renderer, "device", "cpu")).type != "cpu"
    if on_accelerator and workers > 1:
        _render_with_draw_workers(kind, renderer, seed, blocks, own, store, workers)
        return
    if on_accelerator:
        _render_overlapped(kind, renderer, seed, blocks, own, store)
        return
    if workers == 1:
        for start, stop in blocks:
            store(start, kind.render_block(renderer, seed, start, stop, own(start, stop)))
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
                pending[start] = pool.submit(_worker_block, seed, start, stop, own(start, stop))

        top_up()
        for start, _ in blocks:
            store(start, pending.pop(start).result())
            top_up()


RENDER_THREADS = 2


def _worker_draw(seed: int, start: int, stop: int, labels: np.ndarray) -> Any:
    assert _worker is not None, "worker not initialised"
    kind, renderer = _worker
    return kind.draw_block(renderer.config, seed, start, stop, labels)


def _render_with_draw_workers(
    kind: SimulatorKind,
    renderer: Any,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    labels_of: Callable[[int, int], np.ndarray],
    store: Callable[[int, Block], None],
    workers: int,
) -> None:
    """A GPU run of a kind with per-image Python draws: ``workers`` processes draw the
    parameters of upcoming blocks, :data:`RENDER_THREADS` threads render them here, and blocks
    are stored in index order. The workers come from a fork server (this process holds a CUDA
    context and threads, which a plain fork must not copy) that imported darklens once."""
    if "forkserver" in get_all_start_methods():
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload([__name__, kind.render_block.__module__])
    else:
        ctx = get_context("spawn")
    init_args = (kind.name, renderer.config.to_dict())
    queue = iter(blocks)
    drawn: dict[int, Future] = {}
    rendered: dict[int, Future] = {}
    with (
        ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=init_args
        ) as draws,
        ThreadPoolExecutor(RENDER_THREADS) as renders,
    ):

        def top_up() -> None:
            while len(drawn) < 2 * workers:
                block = next(queue, None)
                if block is None:
                    return
                start, stop = block
                drawn[start] = draws.submit(_worker_draw, seed, start, stop, labels_of(start, stop))

        def render(start: int, stop: int) -> Block:
            params = drawn.pop(start).result()
            return kind.render_drawn(renderer, seed, start, stop, labels_of(start, stop), params)

        top_up()
        order = list(blocks)
        for position, (start, _) in enumerate(order):
            for ahead_start, ahead_stop in order[position : position + RENDER_THREADS]:
                if ahead_start not in rendered:
                    rendered[ahead_start] = renders.submit(render, ahead_start, ahead_stop)
            store(start, rendered.pop(start).result())
            top_up()


def _render_overlapped(
    kind: SimulatorKind,
    renderer: Any,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    labels_of: Callable[[int, int], np.ndarray],
    store: Callable[[int, Block], None],
) -> None:
    """Blocks rendered by :data:`RENDER_THREADS` threads, stored here in index order."""
    queue = iter(blocks)
    pending: dict[int, Future] = {}
    with ThreadPoolExecutor(RENDER_THREADS) as pool:

        def top_up() -> None:
            while len(pending) < RENDER_THREADS:
                block = next(queue, None)
                if block is None:
                    return
                start, stop = block
                pending[start] = pool.submit(
                    kind.render_block, renderer, seed, start, stop, labels_of(start, stop)
                )

        top_up()
        for start, _ in blocks:
            store(start, pending.pop(start).result())
            top_up()


def plan_blocks(
    n: int,
    batch_size: int,
    workers: int,
    device: str,
    what: str = "n",
    draws_in_workers: bool = False,
) -> list[tuple[int, int]]:
    """Check a simulation's size and parallel settings; return its (start, stop) blocks.

    ``draws_in_workers``: the kind can draw parameters in worker processes for a GPU run."""
    if n < 1:
        raise ValueError(f"{what} must be >= 1, got {n}")
    if workers < 1 or batch_size < 1:
        raise ValueError("workers and batch_size must be >= 1")
    if device != "cpu" and workers > 1 and not draws_in_workers:
        raise ValueError(
            "use --workers 1 with a GPU device for this preset: the GPU already renders in "
            "parallel and its parameters are drawn for whole blocks at once"
        )
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
    first_index: int = 0,
) -> SimulationResult:
    """Render ``blocks`` of the kind into a dataset file at ``out`` (written atomically).

    ``progress`` is called with the number of images finished after each block. A shard holds
    images ``first_index`` onwards: its blocks are global index ranges, ``layout`` its own rows.
    """
    t0 = time.perf_counter()
    args = _writer_args(kind, renderer.config, layout, manifest)
    store_clean = bool(getattr(renderer.config, "store_clean", False))
    with DatasetWriter(out, **args, overwrite=overwrite, store_clean=store_clean) as writer:
        _fill(writer, kind, renderer, seed, blocks, workers, layout, progress, first_index)
    return SimulationResult(Path(out), len(layout.labels), time.perf_counter() - t0)


def render_dataset_in_memory(
    kind: SimulatorKind,
    renderer: Any,
    *,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    workers: int,
    layout: Layout,
    manifest: Mapping[str, Any],
    progress: Callable[[int], None] | None = None,
) -> InMemoryDataset:
    """Render ``blocks`` of the kind into an :class:`InMemoryDataset`: the same arrays and
    manifest that :func:`write_rendered_dataset` writes to a file."""
    if getattr(renderer.config, "store_clean", False):
        raise ValueError("store_clean writes /targets/clean into a dataset file: give out=PATH")
    writer = ArrayWriter(**_writer_args(kind, renderer.config, layout, manifest))
    _fill(writer, kind, renderer, seed, blocks, workers, layout, progress)
    return writer.close()


def _writer_args(
    kind: SimulatorKind, config: Any, layout: Layout, manifest: Mapping[str, Any]
) -> dict[str, Any]:
    """What a :class:`DatasetWriter` or an :class:`ArrayWriter` is made with."""
    return {
        "n": len(layout.labels),
        "image_shape": kind.image_shape(config),
        "class_names": config.class_names,
        "manifest": manifest,
        "truth_columns": kind.truth_columns(config),
        "extra_inputs": kind.extra_inputs(config) or None,
    }


def _fill(
    writer: DatasetWriter | ArrayWriter,
    kind: SimulatorKind,
    renderer: Any,
    seed: int,
    blocks: Sequence[tuple[int, int]],
    workers: int,
    layout: Layout,
    progress: Callable[[int], None] | None,
    first_index: int = 0,
) -> None:
    """Render every block and hand it, with its labels and split codes, to ``writer`` (rows
    counted from ``first_index``, the first global index of a shard)."""

    def store(start: int, block: Block) -> None:
        row = start - first_index
        stop = row + len(block.images)
        writer.write(
            row,
            block.images,
            layout.labels[row:stop],
            layout.split_codes[row:stop],
            block.truth,
            block.inputs or None,
            **({} if block.clean is None else {"clean": block.clean}),
        )
        if progress is not None:
            progress(len(block.images))

    render_blocks(kind, renderer, seed, blocks, layout.labels, workers, store, first_index)
