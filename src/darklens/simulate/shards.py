"""Sharded simulation on Ray: index ranges as Ray tasks, one shard file each, then one index.

Image i depends only on (config, seed, i), so shard k (images start_k..stop_k-1, rendered with
their global indices and the whole run's layout) holds exactly the rows a single-machine run
would write there; the index file (:mod:`darklens.data.shards`) maps them back into one dataset.
A shard is a complete dataset file or absent (atomic writes); a run whose shards did not all
succeed writes no index and says which failed, and running it again renders only the shards
that are missing (or were made with other settings).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darklens._ray import LOCAL, connect
from darklens.data.shards import ShardIndexWriter, shard_path
from darklens.simulate.blocks import SimulationResult, plan_blocks, write_rendered_dataset
from darklens.simulate.kinds import KINDS, Layout, SizeRequest, kind_of, simulator_kinds


class ShardError(RuntimeError):
    """Some shards of a sharded simulation failed; the others are kept for a rerun."""


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (start, stop) ranges covering 0..n, sizes differing by at most 1."""
    if not 1 <= shards <= n:
        raise ValueError(f"shards must be in 1..{n} (the number of images), got {shards}")
    edges = np.linspace(0, n, shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def render_shard(
    kind_name: str,
    config: dict[str, Any],
    seed: int,
    start: int,
    stop: int,
    labels: np.ndarray,
    split_codes: np.ndarray,
    manifest: dict[str, Any],
    path: str,
    batch_size: int,
    device: str,
) -> str:
    """Render images start..stop-1 into the shard file ``path`` (what one Ray task runs)."""
    simulator_kinds()
    kind = KINDS.get(kind_name)
    renderer = kind.renderer(kind.config_type.from_dict(config), device)
    blocks = [(a + start, b + start) for a, b in plan_blocks(stop - start, batch_size, 1, device)]
    write_rendered_dataset(
        path,
        kind,
        renderer,
        seed=seed,
        blocks=blocks,
        workers=1,
        layout=Layout(labels, split_codes),
        manifest=manifest,
        overwrite=True,
        first_index=start,
    )
    return path


def _shard_manifest(manifest: dict[str, Any], k: int, count: int, start: int, stop: int) -> dict:
    return {**manifest, "shard": {"index": k, "count": count, "start": start, "stop": stop}}


def _is_done(path: Path, manifest: dict[str, Any]) -> bool:
    """Whether ``path`` is a complete shard made with exactly these settings."""
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return json.loads(f.attrs["manifest"]) == json.loads(json.dumps(manifest))
    except (OSError, KeyError, ValueError):
        return False


def simulate_shards(
    config: Any,
    out: str | Path,
    *,
    shards: int,
    address: str = LOCAL,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
    split: Sequence[float] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate the dataset of :func:`darklens.simulate.api.simulate` as ``shards`` shard files
    rendered by Ray tasks (on the cluster at ``address``), then its index file ``out``.

    Raises :class:`ShardError` naming the shards that failed (the index is then not written);
    the same call again renders only the missing shards.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    kind = kind_of(config)
    fractions = None if lens_fraction is None else tuple(float(f) for f in lens_fraction)
    size = SizeRequest(n, n_per_class, fractions)  # type: ignore[arg-type]
    split = kind.default_split if split is None else tuple(split)
    batch = kind.default_batch_size if batch_size is None else batch_size
    total = kind.count(config, size)
    plan_blocks(total, batch, 1, device)  # checks the size and settings before any work
    ranges = shard_ranges(total, shards)
    layout = kind.layout(config, size, split, seed)
    manifest = kind.dataset_manifest(config, kind.renderer(config, "cpu"), seed, size, split)
    ray = connect(address)
    started = time.perf_counter()
    task = ray.remote(num_cpus=1, num_gpus=0 if device == "cpu" else 1, max_retries=0)(render_shard)
    paths, pending = [], {}
    for k, (start, stop) in enumerate(ranges):
        path = shard_path(out, k, shards)
        paths.append(path)
        own = _shard_manifest(manifest, k, shards, start, stop)
        if not _is_done(path, own):
            pending[k] = task.remote(
                kind.name,
                config.to_dict(),
                seed,
                start,
                stop,
                layout.labels[start:stop],
                layout.split_codes[start:stop],
                own,
                str(path),
                batch,
                device,
            )
        elif progress is not None:
            progress(stop - start)
    _wait(ray, pending, ranges, progress)
    ShardIndexWriter(out, paths, ranges, manifest, overwrite=overwrite).close()
    return SimulationResult(out, total, time.perf_counter() - started)


def _wait(ray, pending: dict[int, Any], ranges, progress: Callable[[int], None] | None) -> None:
    """Wait for every shard task; ShardError listing the failures once all have ended."""
    failures = []
    by_ref = {ref: k for k, ref in pending.items()}
    remaining = list(by_ref)
    while remaining:
        done, remaining = ray.wait(remaining, num_returns=1)
        k = by_ref[done[0]]
        try:
            ray.get(done[0])
        except Exception as err:  # a task's error, re-raised by Ray: collect, report below
            cause = getattr(err, "cause", None) or err
            failures.append(f"shard {k} ({type(cause).__name__}: {str(cause).splitlines()[0]})")
            continue
        if progress is not None:
            progress(ranges[k][1] - ranges[k][0])
    if failures:
        raise ShardError(
            f"{len(failures)} of {len(ranges)} shard(s) failed: {'; '.join(failures)}. The "
            "finished shards are kept and no index was written: run the same command again to "
            "render the missing ones"
        )
