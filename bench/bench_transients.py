"""Lensed-transient classifiers side by side on one DES-deep-like dataset (issue 5).

    python bench/bench_transients.py --n 20000 --budget-cpu-min 8 --work /tmp/bench_tr

Rows, all on the same simulated ``transients_des_deep`` file (or ``--data``), same splits:

- ``cnn_lstm``, ``lonet``, ``munet``, ``glonet`` with the DeepGraviLens recipe (Pinciroli Vago &
  Fraternali 2023, REFERENCES.md): Adam 1e-3, weight decay 1e-4, class-weighted cross-entropy,
  batch 128, constant learning rate, images min-max scaled per band, light curves min-max scaled
  per band; their "≤ 500 epochs, patience 20" is cut by the CPU budget here;
- ``deepgravilens``: the SVM stack fitted on the LoNet/MuNet/GloNet runs above (no retraining;
  its CPU time is theirs plus the SVM fit);
- ``darklens_<model>``: the darklens recipe on a member architecture: AdamW 2e-3, one warm-up
  epoch then cosine decay sized to the budget, dihedral flips/rotations of the images;
- ``darklens_ensemble``: mean probabilities of the darklens-recipe runs (a committee).

Each training stops when its process CPU time passes the budget (checked after every epoch) and
its best checkpoint (validation macro AUC) is evaluated on the test split. Prints accuracy,
macro AUC, per-class recall and CPU minutes; ``--json`` saves the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import torch

from darklens.data.h5 import LensDataset
from darklens.evaluate.run import evaluate_checkpoint
from darklens.models.stacking import DEFAULT_MEMBERS
from darklens.recipes.stack import fit_stack
from darklens.runs import save_checkpoint
from darklens.train.config import AugmentConfig, TrainConfig
from darklens.train.trainer import train

PAPER = dict(
    optimizer="adam",
    lr=1e-3,
    weight_decay=1e-4,
    schedule="none",
    epochs=500,
    batch_size=128,
    class_weighting="balanced",
    normalization="channel_minmax",
    augment=AugmentConfig(dihedral=False),
)
DARKLENS = dict(
    optimizer="adamw",
    lr=2e-3,
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=1,
    batch_size=128,
    normalization="channel_minmax",
    augment=AugmentConfig(dihedral=True),
)
# Training images per CPU-second of each model at 4x45x45, T=15, batch 128, one thread (measured
# on the dev machine); used to size the darklens cosine schedule to the budget.
RATES = {"cnn_lstm": 536, "lonet": 417, "munet": 442, "glonet": 182}
# DES-deep accuracy (%) reported by Pinciroli Vago & Fraternali (2023), for context only.
PUBLISHED = {"deepgravilens": 69.6, "munet": 67.9, "lonet": 67.5}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def budgeted_train(config: TrainConfig, run_dir: Path, budget_s: float) -> tuple[Path, float, int]:
    """Train until the epochs are done or the CPU budget is spent (resumes a finished folder)."""
    start = cpu_seconds()
    resume = (run_dir / "last_state.safetensors").is_file()
    result = train(
        config,
        None,
        run_dir,
        resume=resume,
        should_stop=lambda row: cpu_seconds() - start >= budget_s,
    )
    return result.run_dir, (cpu_seconds() - start) / 60, result.epochs_completed


def evaluate(checkpoints, data: Path, out: Path) -> tuple[dict, float]:
    start = cpu_seconds()
    metrics = evaluate_checkpoint(checkpoints, data, out, split="test")
    return metrics, (cpu_seconds() - start) / 60


def row(name: str, model: str, epochs: int, cpu_min: float, metrics: dict, eval_min: float):
    report = metrics["classification_report"]
    recalls = [report[c]["recall"] for c in metrics["class_names"]]
    out = {
        "recipe": name,
        "model": model,
        "epochs": epochs,
        "train_cpu_min": round(cpu_min, 2),
        "eval_cpu_min": round(eval_min, 2),
        "test_accuracy": metrics["accuracy"],
        "test_macro_auc": metrics["macro_auc"],
        "recall_per_class": dict(zip(metrics["class_names"], recalls, strict=True)),
    }
    print(
        f"{name:18s} {model:14s} {epochs:4d} ep {cpu_min:6.1f} CPU-min  acc "
        f"{metrics['accuracy']:.4f}  macro AUC {metrics['macro_auc']:.4f}  recall "
        + " ".join(f"{r:.3f}" for r in recalls),
        flush=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="existing transients dataset (.h5)")
    parser.add_argument("--n", type=int, default=20000, help="objects to simulate without --data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget-cpu-min", type=float, default=8.0)
    parser.add_argument("--models", default="cnn_lstm,lonet,munet,glonet")
    parser.add_argument("--darklens-models", default="lonet,munet")
    parser.add_argument("--work", type=Path, default=Path("bench_transients"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({args.threads} thread(s)), budget {args.budget_cpu_min} CPU-min per training",
        flush=True,
    )
    data = args.data or args.work / f"transients_des_deep_{args.n}.h5"
    if not data.is_file():
        from darklens.simulate.api import get_any_preset, simulate

        start = time.perf_counter()
        simulate(
            get_any_preset("transients_des_deep"),
            data,
            n=args.n,
            split=(0.7, 0.15, 0.15),
            workers=args.workers,
        )
        print(f"simulated {args.n} objects in {time.perf_counter() - start:.0f} s", flush=True)
    with LensDataset(data) as dataset:
        print(f"data: {data} {dataset.counts()}", flush=True)
    budget = args.budget_cpu_min * 60
    rows, member_dirs, member_cpu = [], {}, {}
    for model in args.models.split(","):
        config = TrainConfig(data=str(data), model=model, device="cpu", seed=0, **PAPER)
        run_dir, cpu_min, epochs = budgeted_train(config, args.work / "paper" / model, budget)
        metrics, eval_min = evaluate(run_dir, data, args.work / "reports" / f"paper_{model}")
        rows.append(row(model, model, epochs, cpu_min, metrics, eval_min))
        member_dirs[model], member_cpu[model] = run_dir, cpu_min
    if all(m in member_dirs for m in DEFAULT_MEMBERS):
        start = cpu_seconds()
        config = TrainConfig(data=str(data), model="deepgravilens", device="cpu", **PAPER)
        stack, meta, report = fit_stack(
            config, DEFAULT_MEMBERS, [member_dirs[m] for m in DEFAULT_MEMBERS]
        )
        stack_dir = args.work / "paper" / "deepgravilens"
        stack_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(stack_dir / "best", stack, meta)
        fit_min = (cpu_seconds() - start) / 60
        svm = report["svm"]
        print(f"SVM: kernel {svm['kernel']}, C {svm['C']}, fit {fit_min:.1f} CPU-min", flush=True)
        metrics, eval_min = evaluate(stack_dir, data, args.work / "reports" / "deepgravilens")
        total = fit_min + sum(member_cpu[m] for m in DEFAULT_MEMBERS)
        rows.append(row("deepgravilens", "svm stack", 0, total, metrics, eval_min))
        rows[-1]["svm"] = {k: svm[k] for k in ("kernel", "C", "gamma", "val_accuracy")}
    ours = []
    for model in filter(None, args.darklens_models.split(",")):
        per_epoch_s = 0.7 * 1.15 * (dataset_size(data) / RATES.get(model, 300))
        epochs = max(2, int(budget / per_epoch_s))
        config = TrainConfig(
            data=str(data), model=model, device="cpu", seed=0, epochs=epochs, **DARKLENS
        )
        run_dir, cpu_min, done = budgeted_train(config, args.work / "darklens" / model, budget)
        metrics, eval_min = evaluate(run_dir, data, args.work / "reports" / f"darklens_{model}")
        rows.append(row(f"darklens_{model}", model, done, cpu_min, metrics, eval_min))
        ours.append((run_dir, cpu_min))
    if len(ours) > 1:
        metrics, eval_min = evaluate(
            [d for d, _ in ours], data, args.work / "reports" / "darklens_ensemble"
        )
        total = sum(c for _, c in ours)
        rows.append(
            row(
                "darklens_ensemble",
                "+".join(args.darklens_models.split(",")),
                0,
                total,
                metrics,
                eval_min,
            )
        )
    print(
        "\npublished DES-deep accuracy (their data, for context): "
        + ", ".join(f"{k} {v}%" for k, v in PUBLISHED.items())
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def dataset_size(data: Path) -> int:
    with LensDataset(data) as dataset:
        return len(dataset)


if __name__ == "__main__":
    main()
