"""Training recipes side by side on one dataset and the same CPU-time budget.

    python bench/bench_train.py --preset model_ii --n-per-class 2000 --budget-cpu-min 10

Recipes (all on the same simulated dataset, same split, seed 0):
- ``darklens``: the darklens default — ``default`` model, AdamW, cosine with 1 warm-up epoch,
  dihedral flips/rotations, per-image min–max;
- ``seed_cnn``: the DeepLense seed notebook — ``deeplense_cnn``, Adam 1e-3, weight decay 1e-4,
  plateau schedule, 25 epochs;
- ``seed_cbam``: ResNet18+CBAM seed — ``resnet18_cbam``, Adam 1e-4, weight decay 1e-5,
  Gaussian-noise augmentation.
Each recipe runs with its own full schedule until its epochs are done or the process CPU time spent
on it passes the budget (checked after each epoch); then its best checkpoint (by validation macro
AUC) is evaluated on the test split. Prints test macro AUC, CPU minutes and macro AUC per
CPU-minute, and the training throughput of the full loop against the bare forward+backward of the
same model on in-memory tensors.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch

from darklens.evaluate.run import evaluate_checkpoint
from darklens.models import create_model
from darklens.simulate.api import simulate
from darklens.simulate.substructure.presets import get_preset
from darklens.train.config import AugmentConfig, TrainConfig
from darklens.train.trainer import train

DARKLENS_RECIPE = dict(
    optimizer="adamw",
    lr=2e-3,
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=1,
    epochs=8,  # the quickstart recipe: fits a ~10 CPU-minute budget on 6,000 images
    augment=AugmentConfig(dihedral=True),
)
RECIPES: dict[str, dict] = {
    # candidates for `default`: the darklens recipe with other architectures
    "atto": dict(DARKLENS_RECIPE, model="convnextv2_atto"),
    "effnet_b0": dict(DARKLENS_RECIPE, model="efficientnet_b0"),
    "darklens": dict(DARKLENS_RECIPE, model="default"),
    "seed_cnn": dict(
        model="deeplense_cnn",
        optimizer="adam",
        lr=1e-3,
        weight_decay=1e-4,
        schedule="plateau",
        epochs=25,
        augment=AugmentConfig(dihedral=False),
    ),
    "seed_cbam": dict(
        model="resnet18_cbam",
        optimizer="adam",
        lr=1e-4,
        weight_decay=1e-5,
        schedule="cosine",
        epochs=25,
        augment=AugmentConfig(dihedral=False, gaussian_noise_std=0.01),
    ),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_step_rate(model_name: str, image_shape, batch_size: int, steps: int = 5) -> float:
    """Images/s of forward + loss + backward + optimizer step on tensors already in memory."""
    model = create_model(
        model_name, in_chans=image_shape[0], num_classes=3, img_size=image_shape[1]
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, *image_shape)
    y = torch.randint(0, 3, (batch_size,))
    model.train()
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return batch_size * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="model_ii")
    parser.add_argument("--n-per-class", type=int, default=2000)
    parser.add_argument("--budget-cpu-min", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--recipes", default="darklens,seed_cnn,seed_cbam")
    parser.add_argument("--data", type=Path, help="reuse this dataset instead of simulating")
    parser.add_argument("--keep", type=Path, help="keep runs and reports in this folder")
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="only compare the full training loop with bare forward+backward steps",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    work = args.keep or Path(tempfile.mkdtemp(prefix="darklens-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or work / f"{args.preset}.h5"
    if not data.is_file():
        simulate(get_preset(args.preset), data, n_per_class=args.n_per_class, seed=0, workers=2)
    if args.throughput:
        for name in args.recipes.split(","):
            throughput(name, data, work, args.batch_size)
        return
    rows = []
    for name in args.recipes.split(","):
        rows.append(benchmark_recipe(name, data, work, args.budget_cpu_min * 60, args.batch_size))
    print(
        f"\n{'recipe':10s} {'model':14s} {'epochs':>6s} {'CPU min':>8s} {'test macro AUC':>15s} "
        f"{'AUC/CPU-min':>12s} {'loop img/s':>11s} {'bare img/s':>11s} {'loading':>8s}"
    )
    for r in rows:
        print(
            f"{r['recipe']:10s} {r['model']:14s} {r['epochs']:6d} {r['cpu_min']:8.1f} "
            f"{r['test_auc']:15.4f} {r['test_auc'] / r['cpu_min']:12.4f} "
            f"{r['loop_rate']:11.0f} {r['bare_rate']:11.0f} {r['loading_share']:7.0%}"
        )


def throughput(name: str, data: Path, work: Path, batch_size: int, rounds: int = 2) -> None:
    """Alternate one training epoch (the full loop: batches, augmentation, normalisation, step)
    with bare steps on in-memory tensors, so both see the same machine load; print medians."""
    from darklens.data.h5 import LensDataset

    settings = RECIPES[name]
    shape = LensDataset(data).image_shape
    loop, bare = [], []
    for r in range(rounds):
        config = TrainConfig(
            data=str(data),
            batch_size=batch_size,
            seed=r,
            device="cpu",
            **dict(settings, epochs=1, warmup_epochs=0),
        )
        result = train(config, None, work / f"throughput_{name}_{r}")
        loop.append(result.history[-1]["images_per_s"])
        bare.append(bare_step_rate(config.model, shape, batch_size, steps=30))
    loop_rate, bare_rate = sorted(loop)[rounds // 2], sorted(bare)[rounds // 2]
    print(
        f"{name:10s} {settings['model']:14s} loop {loop_rate:7.1f} img/s, bare {bare_rate:7.1f} "
        f"img/s, loading and augmentation cost {max(0.0, 1 - loop_rate / bare_rate):.1%}",
        flush=True,
    )


def benchmark_recipe(name: str, data: Path, work: Path, budget_s: float, batch_size: int) -> dict:
    settings = RECIPES[name]
    full = TrainConfig(data=str(data), batch_size=batch_size, seed=0, device="cpu", **settings)
    run_dir = work / name
    start = cpu_seconds()
    result = train(
        full, None, run_dir, should_stop=lambda row: cpu_seconds() - start >= budget_s
    )
    epochs_done = result.epochs_completed
    cpu_min = (cpu_seconds() - start) / 60
    metrics = evaluate_checkpoint(
        [result.best_checkpoint], data, work / f"report_{name}", split="test"
    )
    rates = [row["images_per_s"] for row in result.history]
    loop_rate = sorted(rates)[len(rates) // 2]
    from darklens.data.h5 import LensDataset

    shape = LensDataset(data).image_shape
    bare = bare_step_rate(full.model, shape, batch_size)
    print(
        f"{name}: {epochs_done} epochs, {cpu_min:.1f} CPU-min, test macro AUC "
        f"{metrics['macro_auc']:.4f}, best val AUC {result.best_val_auc:.4f}",
        flush=True,
    )
    return {
        "recipe": name,
        "model": full.model,
        "epochs": epochs_done,
        "cpu_min": cpu_min,
        "test_auc": metrics["macro_auc"],
        "loop_rate": loop_rate,
        "bare_rate": bare,
        "loading_share": max(0.0, 1 - loop_rate / bare),
    }


if __name__ == "__main__":
    main()
