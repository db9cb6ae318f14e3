"""Simulation throughput: darklens (caustics, batched) vs a per-image lenstronomy loop, same run.

    python bench/bench_simulate.py --preset model_ii --n-per-class 3000

Prints images/s for: the lenstronomy loop (one ImageModel per number of point masses, reused —
the careful baseline), our renderer in-process, and the full `simulate_dataset` pipeline (sampling,
rendering, noise, HDF5 write) with 1 and 2 worker processes. Substructure classes only (cdm and
axion) and the full three-class mix are reported separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from darklens.simulate.engine import render_block, simulate_dataset
from darklens.simulate.noise import apply_noise
from darklens.simulate.presets import get_preset
from darklens.simulate.reference import LenstronomyRenderer
from darklens.simulate.render import SubstructureRenderer
from darklens.simulate.sampling import NOISE_STREAM, PARAMS_STREAM, draw_image_params, image_rng


def lenstronomy_loop(config, labels: list[int]) -> float:
    """Images/s of sampling + lenstronomy render + noise, one image at a time."""
    renderer = LenstronomyRenderer(config)
    for label in set(labels):  # build the ImageModels outside the timing
        renderer.render_one(draw_image_params(config, label, image_rng(0, 0, PARAMS_STREAM)))
    t0 = time.perf_counter()
    for i, label in enumerate(labels):
        p = draw_image_params(config, label, image_rng(0, i, PARAMS_STREAM))
        apply_noise(renderer.render_one(p), config, image_rng(0, i, NOISE_STREAM), p.exposure_s)
    return len(labels) / (time.perf_counter() - t0)


def ours_in_process(config, labels: list[int], batch: int) -> float:
    renderer = SubstructureRenderer(config)
    sub = config.override({"class_names": [config.class_names[k] for k in sorted(set(labels))]})
    renderer = SubstructureRenderer(sub)
    render_block(renderer, 0, 0, min(batch, len(labels)))  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(labels), batch):
        render_block(renderer, 0, start, min(start + batch, len(labels)))
    return len(labels) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="model_ii")
    parser.add_argument("--n-per-class", type=int, default=3000)
    parser.add_argument("--n-lenstronomy", type=int, default=300, help="images per class")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = get_preset(args.preset)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; preset {args.preset}"
    )
    rows = []
    for name, classes in [("cdm+axion", [1, 2]), ("all 3 classes", [0, 1, 2])]:
        n_lt = args.n_lenstronomy * len(classes)
        lt = lenstronomy_loop(config, [classes[i % len(classes)] for i in range(n_lt)])
        n_ours = args.n_per_class * len(classes)
        ours = ours_in_process(
            config, [classes[i % len(classes)] for i in range(n_ours)], args.batch_size
        )
        rows.append((f"{name}: lenstronomy per-image loop, 1 process", lt, 1.0))
        rows.append((f"{name}: darklens renderer + noise, 1 process", ours, ours / lt))
    lt_all = rows[2][1]
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            result = simulate_dataset(
                config,
                Path(tmp) / f"w{workers}.h5",
                args.n_per_class,
                workers=workers,
                batch_size=args.batch_size,
            )
            rows.append(
                (
                    f"all 3 classes: `darklens simulate` to HDF5, {workers} worker(s)",
                    result.images_per_second,
                    result.images_per_second / lt_all,
                )
            )
    print(f"{'what':64s} {'images/s':>10s} {'vs lenstronomy':>15s}")
    for what, rate, ratio in rows:
        print(f"{what:64s} {rate:10,.0f} {ratio:14.1f}x")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
