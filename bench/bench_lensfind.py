"""Lens finding side by side: darklens vs CMU DeepLens and LASTRO EPFL, same data and budget.

    python bench/bench_lensfind.py --preset lensfind_ground --threads 1 --workers 1 \\
        --n-train 3000 --n-val 600 --n-test 4000 --budget-min 6 \\
        --work runs/bench_lensfind --json runs/bench_lensfind/ground.json

A GPU-sized run (the Bologna challenge's 20,000 training images, tens of epochs; the budget
then counts wall-clock minutes on the device, darklens trains at full resolution, and the
validation split is large enough to set the decision threshold at FPR 10⁻³):

    python bench/bench_lensfind.py --preset lensfind_ground --device cuda --workers 16 \\
        --threads 8 --n-train 20000 --n-val 5000 --n-test 20000 --budget-min 5 \\
        --target-fpr 1e-3 --darklens-img-size 0 --eval-batch-size 256 \\
        --work runs/bench_lensfind_gpu --json runs/bench_lensfind_gpu/ground.json

``--simulate-only`` makes the datasets and stops (they are found again by their manifest), so
the simulation can run before the GPU is taken.

On a 2-core machine, run the two presets as two such processes side by side (one torch thread
each): small CPU models gain little from a second thread, and both budgets are process CPU time.
The test-set evaluation dominates the cost (8-view TTA for two of the three recipes): for 20,000
test images about 38 (ground) and 36 (space) CPU-minutes for the three recipes together here.

Data. One dataset per preset (``lensfind_ground``: KiDS-like u, g, r, i; ``lensfind_space``:
Euclid-VIS-like), simulated once with the darklens API into ``--work`` and reused while its
manifest (preset config, sizes, lens fractions, seed) matches. The lens fraction is the same in
every split by default and follows the Bologna challenge's test sets (Metcalf et al. 2019, A&A
625, A119): 0.5 for the ground set, 0.4 for the space set (60 % of its images had no source);
its training sets were boosted to about that share too. Give ``--lens-fraction`` one value for
all splits or three (train, val, test).

Budget. Every recipe trains on the same split with the same budget (``--budget-min``): process CPU
minutes (all torch threads counted) on the CPU, wall-clock minutes with ``--device cuda``, checked
after each epoch: another epoch runs only if it would end nearer to the budget than stopping (so a
recipe with slow epochs is not handed up to a whole extra epoch, as "stop once over" would; the
first epoch always runs). Its best checkpoint (validation macro AUC; darklens: partial AUC at FPR ≤
0.1) is evaluated on the test split. A recipe with a cosine schedule plans its length to fit the
budget: it trains the warm-up epoch (whose learning rates do not depend on the run length),
measures what an epoch costs and resumes with the number of epochs the rest of the budget pays for,
so its cosine reaches zero at the budget. Training and evaluation CPU minutes are reported
separately.

Recipes (the baselines as published, within what darklens' training loop offers):

- ``cmu``: ``cmu_deeplens``, Lanusse et al. 2018 (MNRAS 473, 3895) and their challenge notebook
  (github.com/McWilliamsCenter/CMUDeepLens, ``notebooks/BLF_GroundBased.ipynb``): Adam at 1e-3,
  divided by 10 every 40 epochs, batch 128, random flips and quarter-turn rotations (the dihedral
  group). Within a CPU budget of a few epochs the first decay never comes, so a constant rate
  (``schedule=none``) for at most 40 epochs is exactly their schedule. Their preprocessing
  clips each image to a fixed pixel range and rescales it (a fixed, global linear scale); the
  nearest darklens option is ``normalization=dataset`` (fixed per-band scale from training-set
  statistics), without the clip. No test-time augmentation.
- ``lastro``: ``lastro_cnn``, Schaefer et al. 2018 (A&A 611, A2) as described in Metcalf et al.
  2019: Adam on cross-entropy, batches of 30 with 15 lenses and 15 non-lenses
  (``balanced_sampling=True`` draws both classes equally often, so 15 + 15 on average), random
  dihedral transforms, prediction from the 8 dihedral views (TTA). Not stated there, so assumed:
  the learning rate (Adam's default, 1e-3) and the input scaling (per-image standardisation; their
  brightness augmentation, ×U(0.8, 1.2) + U(−0.1, 0.1), implies unit-scale inputs but is not
  available in darklens and is left out). Their views are combined by the product of the 8
  probabilities, darklens' TTA by the mean.
- ``darklens``: the ``default`` model (ResNet-18) on images resized to 64 px (an epoch costs
  about 2.5× less than at 101 px, so more of them fit the budget), AdamW 2e-3, weight decay 1e-4,
  cosine schedule with one warm-up epoch planned to the budget, balanced class weights, dihedral
  augmentation, ``asinh`` scaling with each band's sky noise as the softening (a fixed scale per
  band: the noise is linear, a faint arc keeps its S/N, the lens galaxy's core is compressed),
  the best epoch chosen by the TPR at ``--target-fpr`` on the validation split (the low-FPR end
  lens searches work at, not the AUC), ``--darklens-members`` seeds averaged as an ensemble
  (each given the whole budget), and 8-view TTA at evaluation.

Metrics (``darklens.evaluate.metrics``): AUC with its stratified-bootstrap 95 % interval; TPR0,
the TPR before the first false positive; TPR10, before the tenth (Metcalf et al. 2019's
definitions); the TPR at FPR 10⁻³ and 10⁻⁴. TPR0/TPR10 count false positives in *this* test
set: with N non-lenses, 9 of them is a false-positive rate of 9/N, and the challenge's TPR10 was
taken among 50,000 (ground) or 60,000 (space) non-lenses. ``TPR10@chal`` is the TPR at the
challenge's rate (at most floor(9 N / N_challenge) false positives) for comparison with the
published numbers, which are printed for context (other data: same surveys, different
simulations: the challenge counted barely lensed sources as lenses, these datasets label only
lenses meeting the ``lenspop`` definition). The lens completeness at the decision threshold per
bin of θ_E, arc S/N and source magnitude is in the JSON rows (and each report).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import math
import os
import platform
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from darklens.config import ConfigError, parse_assignments
from darklens.data.h5 import LensDataset
from darklens.evaluate.metrics import fpr_key, tpr_at_fp
from darklens.evaluate.run import PREDICTIONS_FILE, evaluate_checkpoint
from darklens.predict.tables import probability_columns
from darklens.simulate.api import get_any_preset, simulate
from darklens.train.config import AugmentConfig, TrainConfig
from darklens.train.trainer import TrainResult, train

PRESETS = ("lensfind_ground", "lensfind_space")
# Lens share of the challenge's test sets (Metcalf et al. 2019): ground 50 %, space 40 %.
DEFAULT_LENS_FRACTION = {"lensfind_ground": 0.5, "lensfind_space": 0.4}
# Non-lenses among the challenge's 100,000 test images per set (same source).
CHALLENGE_NON_LENSES = {"lensfind_ground": 50_000, "lensfind_space": 60_000}
# Published challenge results (AUROC, TPR0, TPR10), Metcalf et al. 2019, Table 3.
PUBLISHED = {
    "lensfind_ground": {
        "cmu": ("CMU-DeepLens-ResNet-ground3", 0.98, 0.09, 0.45),
        "lastro": ("LASTRO EPFL", 0.97, 0.07, 0.11),
    },
    "lensfind_space": {
        "cmu": ("CMU-DeepLens-ResNet", 0.92, 0.22, 0.29),
        "lastro": ("LASTRO EPFL", 0.93, 0.00, 0.08),
    },
}
CHALLENGE_FP = 9  # TPR10 is the TPR with fewer than 10 false positives


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe: TrainConfig settings, whether to plan a cosine run to the budget, and
    whether evaluation averages the 8 dihedral views."""

    settings: dict[str, Any]
    tta: bool
    plan_to_budget: bool
    source: str


RECIPES: dict[str, Recipe] = {
    "darklens": Recipe(
        settings=dict(
            model="default",
            img_size=64,
            optimizer="adamw",
            lr=2e-3,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_epochs=1,
            epochs=60,  # upper bound; the run length is planned to the budget
            batch_size=64,
            class_weighting="balanced",
            normalization="asinh",
            monitor="val_pauc",
            augment=AugmentConfig(dihedral=True),
        ),
        tta=True,
        plan_to_budget=True,
        source="darklens: ResNet-18, 64 px, asinh (sky-noise softening), AdamW + cosine planned "
        "to the budget, best epoch by partial AUC at FPR <= 0.1, TTA",
    ),
    "cmu": Recipe(
        settings=dict(
            model="cmu_deeplens",
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            schedule="none",
            epochs=40,  # their first ×0.1 decay comes after 40 epochs
            batch_size=128,
            normalization="dataset",
            augment=AugmentConfig(dihedral=True),
        ),
        tta=False,
        plan_to_budget=False,
        source="Lanusse et al. 2018: Adam 1e-3 (÷10 every 40 epochs), batch 128, dihedral",
    ),
    "lastro": Recipe(
        settings=dict(
            model="lastro_cnn",
            optimizer="adam",
            lr=1e-3,
            weight_decay=0.0,
            schedule="none",
            epochs=200,  # not stated; the budget ends the run first
            batch_size=30,
            balanced_sampling=True,
            normalization="zscore",
            augment=AugmentConfig(dihedral=True),
        ),
        tta=True,
        plan_to_budget=False,
        source="Schaefer et al. 2018: Adam, balanced batches of 30, dihedral, 8-view TTA",
    ),
}


def cpu_seconds() -> float:
    """CPU time of this process (all threads), user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


# -- data ----------------------------------------------------------------------------------------
def lens_fractions(preset: str, given: Sequence[float] | None) -> tuple[float, float, float]:
    """Per-split lens fractions (train, val, test): the preset's default, one value or three."""
    if not given:
        return (DEFAULT_LENS_FRACTION[preset],) * 3
    if len(given) == 1:
        return (float(given[0]),) * 3
    train_fraction, val_fraction, test_fraction = (float(f) for f in given)
    return train_fraction, val_fraction, test_fraction


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def dataset_matches(path: Path, wanted: dict[str, Any]) -> str | None:
    """None if the file at ``path`` was made with the ``wanted`` manifest entries, else why not."""
    try:
        with LensDataset(path) as dataset:
            manifest = dataset.manifest
    except (OSError, KeyError, ValueError) as err:
        return f"unreadable ({err})"
    for key, value in wanted.items():
        have = manifest.get(key)
        if key == "split_fractions":
            same = have is not None and np.allclose(have, value)
        else:
            same = _plain_json(have) == _plain_json(value)
        if not same:
            return f"its {key} differs"
    return None


def ensure_dataset(
    preset: str,
    work: Path,
    sizes: tuple[int, int, int],
    fractions: tuple[float, float, float],
    seed: int,
    workers: int,
    overrides: dict[str, str] | None = None,
) -> Path:
    """The cached dataset for these settings, simulated (with progress) when missing or stale;
    ``overrides`` (dotted config paths, as ``darklens simulate --set``) give it its own file."""
    config = get_any_preset(preset)
    name = f"{preset}_{sizes[0]}-{sizes[1]}-{sizes[2]}_seed{seed}"
    if overrides:
        config = config.override(overrides)
        text = json.dumps(sorted(overrides.items()))
        name += "_set" + hashlib.sha256(text.encode()).hexdigest()[:8]
    n = sum(sizes)
    split = tuple(size / n for size in sizes)
    path = work / f"{name}.h5"
    wanted = {
        "preset": preset,
        "config": config.to_dict(),
        "n": n,
        "lens_fraction": list(fractions),
        "split_fractions": list(split),
        "seed": seed,
    }
    if path.is_file():
        reason = dataset_matches(path, wanted)
        if reason is None:
            print(f"{preset}: reusing {path}", flush=True)
            return path
        print(f"{preset}: {path} does not match ({reason}); simulating it again", flush=True)
    done, next_report = 0, 0.1
    t0 = time.perf_counter()

    def progress(count: int) -> None:
        nonlocal done, next_report
        done += count
        if done >= next_report * n or done == n:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"  simulated {done:,}/{n:,} images ({rate:,.0f}/s)", flush=True)
            next_report = math.floor(done / n * 10 + 1) / 10

    print(
        f"{preset}: simulating {n:,} images (train/val/test {sizes[0]:,}/{sizes[1]:,}/"
        f"{sizes[2]:,}, lens fractions {fractions}) with {workers} worker(s) into {path}",
        flush=True,
    )
    work.mkdir(parents=True, exist_ok=True)
    result = simulate(
        config,
        path,
        n=n,
        lens_fraction=fractions,
        split=split,
        seed=seed,
        workers=workers,
        overwrite=True,
        progress=progress,
    )
    print(
        f"{preset}: {n:,} images in {result.seconds / 60:.1f} min "
        f"({result.images_per_second:,.0f} images/s)",
        flush=True,
    )
    return path


# -- training under a budget ---------------------------------------------------------------------
class CpuBudget:
    """A budget for one training run (process CPU seconds, or another ``clock``: wall seconds on
    a GPU), checked after each epoch: another epoch runs only if it would end nearer to the
    budget than stopping there (its cost estimated from the epoch just done), so recipes whose
    epochs cost very different amounts get the same budget on average (the first epoch always
    runs)."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = cpu_seconds) -> None:
        self.budget_s = budget_s
        self.clock = clock
        self.start = self.mark = clock()

    def spent(self) -> float:
        return self.clock() - self.start

    def epoch_done(self) -> float:
        """Seconds since the previous call (or the start)."""
        now = self.clock()
        epoch, self.mark = now - self.mark, now
        return epoch

    def should_stop(self, _row: dict[str, float] | None = None) -> bool:
        epoch = self.epoch_done()
        return self.spent() + epoch / 2 >= self.budget_s


def epoch_cpu_estimate(first_cpu_s: float, epoch_wall_s: float, call_wall_s: float) -> float:
    """CPU seconds of one epoch: the first call's CPU time covers setup and one epoch, so the
    epoch's share of it is taken as the epoch's share of the call's wall time."""
    share = min(1.0, epoch_wall_s / call_wall_s) if call_wall_s > 0 else 1.0
    return max(first_cpu_s * share, 1e-9)


def planned_epochs(first_cpu_s: float, per_epoch_s: float, budget_s: float, max_epochs: int) -> int:
    """Epochs a run can afford after a first one that cost ``first_cpu_s``, the last one ending
    nearest the budget."""
    affordable = 1 + math.floor(max(0.0, budget_s - first_cpu_s) / per_epoch_s + 0.5)
    return max(1, min(max_epochs, affordable))


def train_under_budget(
    config: TrainConfig,
    data: Path,
    run_dir: Path,
    budget_s: float,
    plan: bool,
    clock: Callable[[], float] = cpu_seconds,
) -> tuple[TrainResult, int]:
    """Train within ``budget_s`` seconds of ``clock`` (see :class:`CpuBudget`); returns the
    result and the epochs its schedule was set for (planned runs: fitted to the budget; others:
    the recipe's epochs). A planned run follows its plan unless it overruns by half an epoch."""
    budget = CpuBudget(budget_s, clock)
    if not plan:
        result = train(config, data, run_dir, should_stop=budget.should_stop)
        return result, config.epochs
    wall = time.perf_counter()
    first = train(config, data, run_dir, should_stop=lambda _row: True)
    first_cpu = budget.spent()
    per_epoch = epoch_cpu_estimate(
        first_cpu, first.history[-1]["seconds"], time.perf_counter() - wall
    )
    epochs = planned_epochs(first_cpu, per_epoch, budget_s, config.epochs)
    if epochs <= 1:
        return first, 1
    resumed = dataclasses.replace(config, epochs=epochs)
    result = train(
        resumed,
        data,
        run_dir,
        resume=True,
        should_stop=lambda _row: budget.spent() >= budget_s + per_epoch / 2,
    )
    return result, epochs


def lens_scores(report_dir: Path, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(is_lens, score) of the test images from the evaluation's predictions file. The score is
    −p(non-lens): its CSV text keeps full relative precision where lens probabilities round to 1."""
    column = probability_columns(class_names)[0]
    labels, scores = [], []
    with (report_dir / PREDICTIONS_FILE).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            labels.append(int(row["true"] == class_names[1]))
            scores.append(-float(row[column]))
    return np.asarray(labels), np.asarray(scores)


@dataclasses.dataclass(frozen=True)
class Setup:
    """How every recipe of one invocation runs: device, budget clock, validation target."""

    budget_s: float
    seed: int
    eval_batch_size: int
    device: str = "cpu"
    target_fpr: float = 0.01
    members: int = 1
    darklens_img_size: int = 64
    darklens_monitor: str = "val_pauc"
    darklens_settings: tuple[tuple[str, Any], ...] = ()

    @property
    def clock(self) -> Callable[[], float]:
        return cpu_seconds if self.device == "cpu" else time.perf_counter


def _train_members(
    name: str, preset: str, data: Path, out_dir: Path, setup: Setup
) -> tuple[list[TrainResult], TrainConfig, int]:
    """Train a recipe (the darklens recipe: ``setup.members`` seeds sharing the budget)."""
    recipe = RECIPES[name]
    members = setup.members if name == "darklens" else 1
    settings = dict(recipe.settings)
    if name == "darklens":
        settings["img_size"] = setup.darklens_img_size or None
        settings["monitor"] = setup.darklens_monitor
        settings.update(dict(setup.darklens_settings))
    results, schedule_epochs = [], 0
    for k in range(members):
        config = TrainConfig(
            data=str(data),
            seed=setup.seed + k,
            device=setup.device,
            target_fpr=setup.target_fpr,
            **settings,
        )
        run_dir = out_dir / "runs" / preset / (name if members == 1 else f"{name}/member{k}")
        result, schedule_epochs = train_under_budget(
            config, data, run_dir, setup.budget_s / members, recipe.plan_to_budget, setup.clock
        )
        results.append(result)
    return results, config, schedule_epochs


def run_recipe(name: str, preset: str, data: Path, out_dir: Path, setup: Setup) -> dict[str, Any]:
    """Train one recipe under the budget (runs in ``out_dir/runs``), evaluate its best
    checkpoint(s) on the test split (report in ``out_dir/reports``)."""
    recipe = RECIPES[name]
    source = recipe.source
    if name == "darklens" and setup.darklens_settings:
        source += ", " + ", ".join(f"{k}={v}" for k, v in setup.darklens_settings)
    if name == "darklens" and setup.darklens_monitor != "val_pauc":
        source = source.replace(
            "best epoch by partial AUC at FPR <= 0.1", f"best epoch by {setup.darklens_monitor}"
        )
    print(f"{preset} / {name}: training ({source})", flush=True)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    results, config, schedule_epochs = _train_members(name, preset, data, out_dir, setup)
    train_cpu, train_wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    result = results[0]
    print(
        f"{preset} / {name}: {result.epochs_completed} epoch(s) x {len(results)} in "
        f"{train_cpu / 60:.1f} CPU-min ({train_wall / 60:.1f} wall-min), best epoch "
        f"{result.best_epoch}; evaluating on the test split"
        f"{' with 8-view TTA' if recipe.tta else ''}",
        flush=True,
    )
    report_dir = out_dir / "reports" / preset / name
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    metrics = evaluate_checkpoint(
        [r.best_checkpoint for r in results],
        data,
        report_dir,
        split="test",
        tta=recipe.tta,
        batch_size=setup.eval_batch_size,
        device=setup.device,
    )
    eval_cpu, eval_wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    labels, scores = lens_scores(report_dir, metrics["class_names"])
    n_non_lenses = int((labels == 0).sum())
    challenge_fp = math.floor(CHALLENGE_FP * n_non_lenses / CHALLENGE_NON_LENSES[preset])
    lens_name = metrics["class_names"][1]
    row = {
        "preset": preset,
        "recipe": name,
        "model": config.model,
        "source": source,
        "members": len(results),
        "epochs": result.epochs_completed,
        "schedule_epochs": schedule_epochs,
        "best_epoch": result.best_epoch,
        "best_val_auc": result.best_val_auc,
        "train_cpu_min": train_cpu / 60,
        "train_wall_min": train_wall / 60,
        "eval_cpu_min": eval_cpu / 60,
        "eval_wall_min": eval_wall / 60,
        "tta": recipe.tta,
        "n_test": int(labels.size),
        "n_test_lenses": int(labels.sum()),
        "auc": metrics["auc_per_class"][lens_name],
        "auc_interval": metrics["uncertainty"]["intervals"]["auc"],
        "tpr0": metrics["tpr0"],
        "tpr10": metrics["tpr10"],
        "tpr10_interval": metrics["uncertainty"]["intervals"]["tpr10"],
        "tpr_at_fpr_1e-3": metrics[fpr_key(1e-3)],
        "tpr_at_fpr_1e-4": metrics[fpr_key(1e-4)],
        "challenge_fp": challenge_fp,
        "tpr10_challenge_fpr": tpr_at_fp(labels, scores, challenge_fp),
        "completeness_vs_truth": {
            column: [(b["low"], b["high"], b["n"], b.get("completeness")) for b in entry["bins"]]
            for column, entry in metrics.get("vs_truth", {}).items()
        },
        "train_config": config.to_dict(),
        "report": str(report_dir),
    }
    print(
        f"{preset} / {name}: AUC {row['auc']:.4f} {tuple(round(v, 4) for v in row['auc_interval'])}"
        f", TPR0 {row['tpr0']:.3f}, TPR10 {row['tpr10']:.3f}, TPR@1e-3 "
        f"{row['tpr_at_fpr_1e-3']:.3f}, eval {eval_cpu / 60:.1f} CPU-min",
        flush=True,
    )
    return row


# -- output --------------------------------------------------------------------------------------
def print_table(preset: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    first = rows[0]
    print(
        f"\n{preset}: {first['n_test']:,} test images ({first['n_test_lenses']:,} lenses); "
        f"TPR10@chal = TPR with at most {first['challenge_fp']} false positive(s), the "
        f"challenge's 9 in {CHALLENGE_NON_LENSES[preset]:,} non-lenses"
    )
    header = (
        f"{'recipe':9s} {'model':13s} {'epochs':>6s} {'train min':>9s} {'eval min':>8s} "
        f"{'AUC [95 %]':>22s} {'TPR0':>6s} {'TPR10':>6s} {'@1e-3':>6s} {'TPR10@chal':>10s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        epochs = f"{r['epochs']}/{r['schedule_epochs']}"
        low, high = r["auc_interval"]
        auc = f"{r['auc']:.4f} [{low:.3f}, {high:.3f}]"
        print(
            f"{r['recipe']:9s} {r['model']:13s} {epochs:>6s} {r['train_cpu_min']:9.1f} "
            f"{r['eval_cpu_min']:8.1f} {auc:>22s} {r['tpr0']:6.3f} {r['tpr10']:6.3f} "
            f"{r['tpr_at_fpr_1e-3']:6.3f} {r['tpr10_challenge_fpr']:10.3f}"
        )
    print("published (Metcalf et al. 2019; challenge data, 100,000 test images):")
    for recipe, (entry, auc, tpr0, tpr10) in PUBLISHED[preset].items():
        print(f"  {recipe:7s} {entry:28s} AUC {auc:.2f}  TPR0 {tpr0:.2f}  TPR10 {tpr10:.2f}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="all", choices=[*PRESETS, "all"])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-val", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=20000)
    parser.add_argument(
        "--lens-fraction",
        type=float,
        nargs="+",
        help="lens share per split: one value for all, or train val test "
        "(default: the challenge's test share, ground 0.5, space 0.4)",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=6.0,
        help="per recipe: process CPU minutes on the CPU, wall-clock minutes on a GPU",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--target-fpr",
        type=float,
        default=0.01,
        help="false-positive rate of every recipe's stored decision threshold (and of the "
        "validation TPR that selects darklens' best epoch with --darklens-monitor "
        "val_tpr_at_fpr); 1e-3 needs a few thousand validation non-lenses",
    )
    parser.add_argument(
        "--darklens-members", type=int, default=1, help="darklens ensemble size (shared budget)"
    )
    parser.add_argument(
        "--darklens-img-size",
        type=int,
        default=64,
        help="image size darklens trains at (0: the dataset's, e.g. 101 on a GPU)",
    )
    parser.add_argument(
        "--darklens-monitor",
        default="val_pauc",
        choices=("val_pauc", "val_tpr_at_fpr", "val_auc"),
        help="validation metric that picks darklens' checkpoint (val_pauc: partial AUC over FPR "
        "<= 0.1; until 2026-11-28 val_tpr_at_fpr, whose few counted false positives made the "
        "choice noisy: on lensfind_space it kept epoch 14 of 16, test AUC 0.896 vs 0.923)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting of the preset, e.g. lens_definition.lens_light_residual=0.02 "
        "(repeatable; the dataset gets its own cached file)",
    )
    parser.add_argument(
        "--darklens-set",
        dest="darklens_settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training setting of the darklens recipe, e.g. curriculum=arc_snr (repeatable; "
        "values parsed as YAML)",
    )
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--work", type=Path, default=Path("runs/bench_lensfind"))
    parser.add_argument("--workers", type=int, default=2, help="simulation processes")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=16,
        help="test images per forward pass; does not change results (small batches avoid the "
        "page faults of large activations: 1.3-2.4x faster here on 101 px images)",
    )
    parser.add_argument("--json", type=Path, help="write settings, machine and rows here")
    parser.add_argument(
        "--simulate-only",
        action="store_true",
        help="simulate (or find) the datasets in --work and stop: run the rest later, e.g. on a "
        "GPU, without simulating on its clock",
    )
    args = parser.parse_args(argv)
    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    try:
        args.overrides = parse_assignments(args.overrides)
        settings = parse_assignments(args.darklens_settings)
    except ConfigError as err:
        parser.error(str(err))
    args.darklens_settings = tuple((key, yaml.safe_load(value)) for key, value in settings.items())
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown or not args.recipes:
        parser.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    for name in ("n_train", "n_val", "n_test"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')} must be at least 2")
    if args.budget_min <= 0:
        parser.error("--budget-min must be positive")
    if not 0 < args.target_fpr < 1 or args.darklens_members < 1 or args.darklens_img_size < 0:
        parser.error(
            "--target-fpr must be in (0, 1), --darklens-members >= 1, --darklens-img-size >= 0"
        )
    if args.eval_batch_size < 1:
        parser.error("--eval-batch-size must be at least 1")
    fractions = args.lens_fraction or []
    if len(fractions) not in (0, 1, 3) or not all(0 < f < 1 for f in fractions):
        parser.error(
            f"--lens-fraction takes one value or three (train val test), each in (0, 1); got "
            f"{fractions} (every split needs lenses and non-lenses for its AUC)"
        )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = machine_info()
    print(
        f"machine: {machine['processor']}, {machine['cpu_count']} cores, {machine['platform']}, "
        f"torch {machine['torch']} with {machine['torch_threads']} thread(s)"
    )
    presets = PRESETS if args.preset == "all" else (args.preset,)
    sizes = (args.n_train, args.n_val, args.n_test)
    out_dir = args.work / time.strftime("%Y%m%d-%H%M%S")  # runs and reports of this invocation
    rows: list[dict[str, Any]] = []
    datasets: dict[str, str] = {}
    setup = Setup(
        budget_s=args.budget_min * 60,
        seed=args.seed,
        eval_batch_size=args.eval_batch_size,
        device=args.device,
        target_fpr=args.target_fpr,
        members=args.darklens_members,
        darklens_img_size=args.darklens_img_size,
        darklens_monitor=args.darklens_monitor,
        darklens_settings=args.darklens_settings,
    )
    overrides = args.overrides or None
    for preset in presets:
        fractions = lens_fractions(preset, args.lens_fraction)
        data = ensure_dataset(
            preset, args.work, sizes, fractions, args.seed, args.workers, overrides
        )
        datasets[preset] = str(data)
        if args.simulate_only:
            continue
        for name in args.recipes:
            rows.append(run_recipe(name, preset, data, out_dir, setup))
            if args.json:
                write_json(args, machine, datasets, rows)
    for preset in presets:
        print_table(preset, [r for r in rows if r["preset"] == preset])
    if args.json:
        write_json(args, machine, datasets, rows)
        print(f"\nrows written to {args.json}")


def write_json(
    args: argparse.Namespace,
    machine: dict[str, Any],
    datasets: dict[str, str],
    rows: list[dict[str, Any]],
) -> None:
    """All settings and rows so far (rewritten after each recipe, so a long run leaves partial
    results behind)."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        "settings": settings,
        "machine": machine,
        "datasets": datasets,
        "published": {p: {r: list(v) for r, v in d.items()} for p, d in PUBLISHED.items()},
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2, default=str))


if __name__ == "__main__":
    main()
