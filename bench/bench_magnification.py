"""Lens-finding magnification: refinement batched across systems vs one system at a time.

    python bench/bench_magnification.py --preset lensfind_ground --images 100 --repeats 3

Draws the candidate systems of ``--images`` lens images (``--systems`` each, as the acceptance
loop draws them), samples each system's coarse magnification grid once and times the
refinement step that turns it into a magnification two ways in the same process,
alternating: all systems' resampled points in shared ray traces (rows of similar length padded
to a multiple of 64; what the simulator does) and one ray trace per system (the earlier code
path). Both must give bit-identical magnifications; the script checks that before timing.
Prints seconds per 1,000 systems and the ratio. On an accelerator the batched path replaces
thousands of tiny kernel launches by a few large ones; on a CPU it should cost no more.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from darklens.simulate.func.rng import PARAMS_STREAM, image_rng
from darklens.simulate.kinds import get_any_preset
from darklens.simulate.lensfind.render import LensFindRenderer
from darklens.simulate.lensfind.sampling import draw_header, draw_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lensfind_ground")
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--systems", type=int, default=20, help="candidate systems per image")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = get_any_preset(args.preset)
    renderer = LensFindRenderer(config, device=args.device)
    systems = []
    for i in range(args.images):
        rng = image_rng(0, i, PARAMS_STREAM)
        header = draw_header(config, 1, rng)
        systems += [draw_system(config, header, rng) for _ in range(args.systems)]
    coarse, centres, widths = renderer._coarse_magnification(systems)

    def batched() -> np.ndarray:
        return renderer._refined_fluxes(systems, coarse, centres, widths)

    def one_by_one() -> np.ndarray:
        return np.concatenate(
            [
                renderer._refined_fluxes(
                    [p],
                    coarse[j : j + 1],
                    (centres[0][j : j + 1], centres[1][j : j + 1]),
                    widths[j : j + 1],
                )  # fmt: skip
                for j, p in enumerate(systems)
            ]
        )

    same = np.array_equal(batched(), one_by_one())
    times: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    for _ in range(args.repeats):
        for name, run in (("batched", batched), ("one_by_one", one_by_one)):
            t0 = time.perf_counter()
            run()  # returns host arrays, so a GPU has finished when it does
            times[name].append(time.perf_counter() - t0)
    per_k = {name: 1000 * min(t) / len(systems) for name, t in times.items()}
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), device {args.device}; {args.preset}, {len(systems)} systems"
    )
    print(f"bit-identical magnifications: {same}")
    for name, value in per_k.items():
        print(f"  {name:10s} {value:6.3f} s per 1,000 systems (best of {args.repeats})")
    print(f"  one_by_one / batched = {per_k['one_by_one'] / per_k['batched']:.2f}")
    if not same:
        raise SystemExit("the two paths disagree")


if __name__ == "__main__":
    main()
