"""Transfer between simulators: train on one simulator's images, test on every other's (macro AUC).

    nice python bench/bench_transfer.py --threads 2 --n-per-class 2000 --n-ref-per-class 300 \\
        --budget-cpu-min 5 --work runs/bench_transfer --json runs/bench_transfer/cpu.json

    python bench/bench_transfer.py --device cuda --n-per-class 10000 --n-ref-per-class 1000 \\
        --budget-gpu-min 1.5 --workers 8 --work runs/bench_transfer_gpu \\
        --json runs/bench_transfer_gpu/gpu.json

Rows (training sets, each with the same budget): ``model_ii`` (physical), ``model_ii_compat``,
``model_iii_compat``, ``model_i_compat`` (DeepLenseSim's output, ``--deeplense-compat``),
``model_iv`` (physical), ``robust`` (the domain-randomised preset), and rows with unsupervised
domain adaptation (``darklens train --adapt-to``): ``model_ii`` adapted (AdaBN or DANN) to
unlabelled ``model_iii_compat`` images, and ``robust`` adapted to unlabelled DeepLenseSim Model II
images (each target set is drawn apart from every test set).

Columns (test sets): the test split of every darklens set above plus ``model_iv_compat``, and
DeepLenseSim reference sets (``dls_i``, ``dls_ii``, ``dls_iii``): images made by DeepLenseSim's
own lenstronomy calls (:func:`darklens.simulate.substructure.deeplensesim.write_deeplense_folder`)
in its ``.npy`` layout, imported with ``darklens import`` — the data a DeepLense user has.

Recipe (every row): the ``default`` model (ResNet-18) on images resized to 64 px (Model I's 150 px
images too), per-image min-max normalisation (so a simulator's flux units do not matter), AdamW
2e-3, weight decay 1e-4, batch 64, dihedral augmentation, cosine schedule with one warm-up epoch
planned to the budget (as ``bench_lensfind.py``: the warm-up epoch measures what an epoch costs,
then the run resumes with the epochs the rest of the budget pays for). The best checkpoint by
validation macro AUC (on its own simulator's validation split) is tested on every column.

Budget: process CPU time on CPU (``--budget-cpu-min``, all threads counted), wall time of the
training calls on a GPU (``--budget-gpu-min``). Datasets are simulated once into ``--work`` and
reused while their manifests match.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.data.deeplense import import_deeplense
from darklens.data.h5 import LensDataset
from darklens.evaluate.metrics import macro_auc_ovr
from darklens.predict.predictor import Predictor
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.substructure import deeplensesim
from darklens.train.config import AugmentConfig, TrainConfig
from darklens.train.trainer import TrainResult, train

SPLIT = (0.8, 0.1, 0.1)


@dataclasses.dataclass(frozen=True)
class SimSet:
    """A darklens dataset: preset, compat flag, seed offset (apart from the test sets')."""

    preset: str
    compat: bool = False
    seed_offset: int = 0


@dataclasses.dataclass(frozen=True)
class Row:
    """A training run: its training set and, optionally, adaptation to an unlabelled target."""

    train: str
    adaptation: str = "none"
    target: str | None = None


SIM_SETS = {
    "model_ii": SimSet("model_ii"),
    "model_ii_compat": SimSet("model_ii", True),
    "model_iii_compat": SimSet("model_iii", True),
    "model_i_compat": SimSet("model_i", True),
    "model_iv": SimSet("model_iv"),
    "model_iv_compat": SimSet("model_iv", True),
    "robust": SimSet("robust"),
    # unlabelled adaptation targets, drawn with other seeds than every test set
    "target_model_iii_compat": SimSet("model_iii", True, seed_offset=500),
}
REFERENCES = {"dls_i": "model_i", "dls_ii": "model_ii", "dls_iii": "model_iii"}
TARGET_REFERENCES = {"target_dls_ii": "model_ii"}
COLUMNS = (
    "model_ii", "model_ii_compat", "model_iii_compat", "model_i_compat", "model_iv",
    "model_iv_compat", "robust", "dls_i", "dls_ii", "dls_iii",
)  # fmt: skip
ROWS = {
    "model_ii": Row("model_ii"),
    "model_ii_compat": Row("model_ii_compat"),
    "model_iii_compat": Row("model_iii_compat"),
    "model_i_compat": Row("model_i_compat"),
    "model_iv": Row("model_iv"),
    "robust": Row("robust"),
    "model_ii+adabn:model_iii_compat": Row("model_ii", "adabn", "target_model_iii_compat"),
    "model_ii+dann:model_iii_compat": Row("model_ii", "dann", "target_model_iii_compat"),
    "robust+adabn:dls_ii": Row("robust", "adabn", "target_dls_ii"),
    "robust+dann:dls_ii": Row("robust", "dann", "target_dls_ii"),
}
RECIPE = dict(
    model="default",
    img_size=64,
    optimizer="adamw",
    lr=2e-3,
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=1,
    epochs=80,  # upper bound; the run length is planned to the budget
    batch_size=64,
    normalization="minmax",
    augment=AugmentConfig(dihedral=True),
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_info(device: str) -> dict[str, Any]:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# -- data ----------------------------------------------------------------------------------------
def _same_manifest(path: Path, wanted: dict[str, Any]) -> bool:
    try:
        with LensDataset(path) as dataset:
            manifest = dataset.manifest
    except (OSError, KeyError, ValueError):
        return False
    have = {key: manifest.get(key) for key in wanted}
    return json.loads(json.dumps(have, default=str)) == json.loads(json.dumps(wanted, default=str))


def sim_dataset(name: str, args: argparse.Namespace) -> Path:
    """The darklens dataset ``name`` (simulated when missing or made with other settings)."""
    spec = SIM_SETS[name]
    config = resolve_config(spec.preset, deeplense_compat=True if spec.compat else None)
    n_per_class = args.n_target_per_class if name.startswith("target_") else args.n_per_class
    seed = args.seed + spec.seed_offset
    path = args.work / f"{name}_{n_per_class}_seed{seed}.h5"
    wanted = {"config": config.to_dict(), "n_per_class": n_per_class, "seed": seed}
    if path.is_file() and _same_manifest(path, wanted):
        return path
    t0 = time.perf_counter()
    simulate(config, path, n_per_class=n_per_class, split=SPLIT, seed=seed,
             workers=args.workers, device=args.sim_device, overwrite=True)  # fmt: skip
    print(f"{name}: {3 * n_per_class:,} images in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def reference_dataset(name: str, args: argparse.Namespace) -> Path:
    """A DeepLenseSim reference set (its lenstronomy calls, its .npy layout), imported."""
    model = {**REFERENCES, **TARGET_REFERENCES}[name]
    n_per_class = args.n_target_per_class if name.startswith("target_") else args.n_ref_per_class
    seed = args.seed + 1000 + (500 if name.startswith("target_") else 0)
    path = args.work / f"{name}_{n_per_class}_seed{seed}.h5"
    marker = path.with_suffix(".done")
    if path.is_file() and marker.is_file() and marker.read_text() == f"{n_per_class} {seed}":
        return path
    t0 = time.perf_counter()
    folder = args.work / f"{name}_npy"
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    model_folder = deeplensesim.write_deeplense_folder(folder, model, n_per_class, seed)
    import_deeplense(model_folder, path, overwrite=True, progress=False)
    marker.write_text(f"{n_per_class} {seed}")
    print(f"{name}: {3 * n_per_class:,} DeepLenseSim images in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return path


def dataset(name: str, args: argparse.Namespace) -> Path:
    if name in SIM_SETS:
        return sim_dataset(name, args)
    return reference_dataset(name, args)


def test_images(name: str, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of a column: a darklens test split, or a whole reference set."""
    with LensDataset(dataset(name, args)) as ds:
        if name in SIM_SETS:
            index = ds.split_indices("test")
            return ds.images(index), ds.labels[index]
        return ds.images(), ds.labels


# -- training under a budget ---------------------------------------------------------------------
class Budget:
    """CPU seconds of this process (CPU runs) or wall seconds (GPU runs) since the start."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds, self.clock = seconds, clock
        self.start = clock()

    def spent(self) -> float:
        return self.clock() - self.start


def train_under_budget(
    config: TrainConfig, run_dir: Path, budget: Budget
) -> tuple[TrainResult, int]:
    """The warm-up epoch, then a resumed run whose cosine schedule ends at the budget (it stops
    once past the budget by half an epoch). Returns the result and its planned epochs."""
    first = train(config, None, run_dir, should_stop=lambda _row: True)
    per_epoch = max(budget.spent(), 1e-9)  # setup + one epoch: a slight overestimate
    epochs = max(1, min(config.epochs, 1 + math.floor((budget.seconds - per_epoch) / per_epoch
                                                           + 0.5)))  # fmt: skip
    if epochs <= 1:
        return first, 1
    resumed = dataclasses.replace(config, epochs=epochs)
    stop = lambda _row: budget.spent() >= budget.seconds + per_epoch / 2  # noqa: E731
    return train(resumed, None, run_dir, resume=True, should_stop=stop), epochs


def run_row(name: str, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    row = ROWS[name]
    data = dataset(row.train, args)
    settings = dict(RECIPE, data=str(data), seed=args.seed, device=args.device)
    if row.adaptation != "none":
        settings.update(adapt_to=str(dataset(row.target, args)), adaptation=row.adaptation)
    config = TrainConfig(**settings)
    clock = cpu_seconds if args.device == "cpu" else time.perf_counter
    seconds = 60 * (args.budget_cpu_min if args.device == "cpu" else args.budget_gpu_min)
    budget = Budget(seconds, clock)
    wall = time.perf_counter()
    print(f"{name}: training on {data.name}", flush=True)
    result, planned = train_under_budget(config, out_dir / "runs" / name, budget)
    out = {
        "row": name, "train": row.train, "adaptation": row.adaptation, "target": row.target,
        "epochs": result.epochs_completed, "planned_epochs": planned,
        "best_epoch": result.best_epoch, "best_val_auc": result.best_val_auc,
        "train_budget_min": budget.spent() / 60,
        "train_wall_min": (time.perf_counter() - wall) / 60, "auc": {},
    }  # fmt: skip
    predictor = Predictor.from_checkpoint(result.run_dir, device=args.device, batch_size=256)
    for column in args.columns:
        images, labels = test_images(column, args)
        out["auc"][column] = float(macro_auc_ovr(labels, predictor.predict_proba(images)))
    cells = "  ".join(f"{c} {v:.3f}" for c, v in out["auc"].items())
    print(f"{name}: {out['epochs']} epochs, {out['train_budget_min']:.1f} budget-min; {cells}",
          flush=True)  # fmt: skip
    return out


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    header = f"| train on \\ test on | {' | '.join(columns)} |"
    print("\n" + header)
    print("|---|" + "---:|" * len(columns))
    for r in rows:
        print(f"| {r['row']} | " + " | ".join(f"{r['auc'][c]:.3f}" for c in columns) + " |")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"of {', '.join(ROWS)}")
    parser.add_argument("--columns", default=",".join(COLUMNS), help=f"of {', '.join(COLUMNS)}")
    parser.add_argument("--n-per-class", type=int, default=2000, help="darklens sets (80/10/10)")
    parser.add_argument("--n-ref-per-class", type=int, default=300, help="DeepLenseSim test sets")
    parser.add_argument("--n-target-per-class", type=int, default=500, help="adaptation targets")
    parser.add_argument("--budget-cpu-min", type=float, default=5.0, help="per row, on CPU")
    parser.add_argument("--budget-gpu-min", type=float, default=1.5, help="per row, on a GPU")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--workers", type=int, default=1, help="simulation processes (CPU)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_transfer"))
    parser.add_argument("--json", type=Path, help="write settings, machine and rows here")
    args = parser.parse_args(argv)
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    args.columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = [r for r in args.rows if r not in ROWS] + [
        c for c in args.columns if c not in COLUMNS
    ]
    if unknown or not args.rows or not args.columns:
        parser.error(f"unknown rows or columns {unknown}")
    if min(args.n_per_class, args.n_ref_per_class, args.n_target_per_class) < 10:
        parser.error("sizes must be at least 10 images per class")
    args.sim_device = args.device
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message="resizing", category=UserWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.device)
    print(f"machine: {machine}", flush=True)
    out_dir = args.work / time.strftime("%Y%m%d-%H%M%S")
    rows: list[dict[str, Any]] = []
    for name in args.rows:
        rows.append(run_row(name, args, out_dir))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
            args.json.write_text(json.dumps(
                {"settings": settings, "machine": machine, "recipe": str(RECIPE), "rows": rows},
                indent=2, default=str,
            ))  # fmt: skip
    print_table(rows, args.columns)


if __name__ == "__main__":
    main()
