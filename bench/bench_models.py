"""Benchmark the model zoo: parameter count and training throughput on one CPU thread.

For every registered model (or those matching ``--models``) and every image size, times
forward + cross-entropy + backward on a random batch (after warm-up iterations) and prints a
Markdown table of parameters and images per CPU-second. CPU time (not wall time) is measured so
that numbers taken on a shared, busy machine stay comparable; with one thread they equal the
images per wall-second of an idle machine. Models that refuse a size (e.g. Swin at a size its
windows can't tile) are listed with the reason.

    PYTHONPATH=src python bench/bench_models.py                  # 64 and 150 px: ~12 CPU-min
    PYTHONPATH=src python bench/bench_models.py --models 'convnextv2_*' --sizes 64 --iters 3
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from darklens.models import create_model, list_models, resolve_model_name


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_throughput(
    model: nn.Module, batch: torch.Tensor, labels: torch.Tensor, iters: int, warmup: int
) -> float:
    """Images per CPU-second of forward + loss + backward (gradients zeroed each step)."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(batch), labels).backward()

    for _ in range(warmup):
        step()
    start = time.process_time()
    for _ in range(iters):
        step()
    return batch.shape[0] * iters / (time.process_time() - start)


def bench_model(name: str, args: argparse.Namespace) -> list[str]:
    """One table row: name, parameters (at the first size), images/s at each size."""
    if resolve_model_name(name) != name:
        return [name, resolve_model_name(name), "(alias)", *["(as above)"] * len(args.sizes)]
    cells: list[str] = []
    params = ""
    for size in args.sizes:
        torch.manual_seed(0)
        try:
            model = create_model(name, in_chans=args.in_chans, num_classes=3, img_size=size)
        except ValueError as err:
            cells.append(f"n/a ({err})")
            continue
        params = params or f"{parameter_count(model) / 1e6:.2f}M"
        batch = torch.randn(args.batch, args.in_chans, size, size)
        labels = torch.randint(0, 3, (args.batch,))
        cells.append(f"{train_throughput(model, batch, labels, args.iters, args.warmup):.1f}")
    return [name, resolve_model_name(name), params, *cells]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="*", help="shell pattern of model names")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 150], help="image sides, px")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2, help="timed iterations per model/size")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s), batch {args.batch}, {args.in_chans} channel(s), "
        f"{args.iters} timed + {args.warmup} warm-up iterations; "
        "forward+backward images per CPU-second"
    )
    sizes = " | ".join(f"img/CPU-s @{s}px" for s in args.sizes)
    print(f"| model | architecture | params | {sizes} |")
    print("|" + "---|" * (3 + len(args.sizes)))
    for name in list_models(args.models):
        print("| " + " | ".join(bench_model(name, args)) + " |", flush=True)


if __name__ == "__main__":
    main()
