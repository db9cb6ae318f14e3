"""Regression and denoising on this CPU (issue 14): does a CNN beat the simplest honest baseline?

    PYTHONPATH=src python bench/bench_tasks.py --work runs/bench_tasks            # all sections
    PYTHONPATH=src python bench/bench_tasks.py --sections axion --n 1500 --epochs 8

Sections (each simulates its data with the darklens API into ``--work``, trains with
``darklens.train``, evaluates the best checkpoint on the test split and prints a Markdown row):

- ``axion``: log10 axion mass (``log10_axion_mass``) on model_ii images of the axion class;
- ``theta_e``: θ_E (``theta_e_arcsec``) on lens-finding lenses (``lensfind_deeplense``: 64 px,
  HSC-like g, r, i; every image a lens);
- ``subhalo``: log10 of the total subhalo mass (``log10_total_subhalo_mass_msun``) on model_ii
  images of the cdm class;
- ``denoise``: model_ii at ``source.magnitude=23`` (low S/N), three classes: a classifier trained
  and tested on the noisy images against the same classifier trained and tested on the images
  denoised by a small U-Net (trained on the training split's noisy → clean pairs);
- ``denoise_lensfind``: the same for lens finding (``lensfind_deeplense``, half lenses).

Regression rows compare the model's test RMSE with predicting the training mean (its RMSE is the
test targets' spread around that mean) and give R² and the 68 % coverage of the predicted σ
(Gaussian-NLL heads). Every run uses ``deeplense_cnn`` (the fastest CPU model) with gradient
clipping at 1, the seed 0, and ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from darklens.data.h5 import LensDataset
from darklens.evaluate.run import evaluate_checkpoint
from darklens.predict.denoising import denoise_files
from darklens.simulate.api import simulate
from darklens.train import TrainConfig, train
from darklens.train.targets import target_table

SPLIT = (0.7, 0.15, 0.15)
REGRESSIONS = {
    "axion": ("model_ii", {"class_names": ["axion"]}, "log10_axion_mass"),
    "theta_e": ("lensfind_deeplense", {}, "theta_e_arcsec"),
    "subhalo": ("model_ii", {"class_names": ["cdm"]}, "log10_total_subhalo_mass_msun"),
}


def _simulate(
    preset: str,
    path: Path,
    n: int,
    overrides: dict[str, Any],
    lens_fraction: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> float:
    """Simulate ``n`` images into ``path`` (reused when present); returns the seconds taken."""
    if path.is_file():
        return 0.0
    start = time.perf_counter()
    size = {"n": n, "lens_fraction": lens_fraction} if preset.startswith("lensfind") else {}
    if not size:
        classes = overrides.get("class_names") or ["no_sub", "cdm", "axion"]
        size = {"n_per_class": n // len(classes)}
    simulate(preset, path, split=SPLIT, seed=0, overrides=overrides, **size)
    return time.perf_counter() - start


def _train(data: Path, run: Path, epochs: int, **settings: Any) -> float:
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    config = TrainConfig(
        model="deeplense_cnn", batch_size=32, epochs=epochs, seed=0, grad_clip_norm=1.0,
        lr=1e-3, **settings,
    )  # fmt: skip
    train(config, data, run)
    return time.perf_counter() - start


def regression_row(name: str, args: argparse.Namespace) -> dict[str, Any]:
    preset, overrides, target = REGRESSIONS[name]
    data = args.work / f"{name}.h5"
    sim_s = _simulate(preset, data, args.n, overrides)
    train_s = _train(
        data, args.work / f"run_{name}", args.epochs, task="regress", targets=(target,)
    )
    metrics = evaluate_checkpoint(args.work / f"run_{name}", data, args.work / f"eval_{name}")
    with LensDataset(data) as dataset:
        values = target_table(dataset, [target])[:, 0]
        train_values = values[dataset.split_indices("train")]
        test_values = values[dataset.split_indices("test")]
    train_values = train_values[np.isfinite(train_values)]
    test_values = test_values[np.isfinite(test_values)]
    baseline = float(np.sqrt(np.mean((test_values - train_values.mean()) ** 2)))
    scores = metrics["targets"][target]
    return {
        "task": name, "preset": preset, "target": target, "n_train": int(train_values.size),
        "n_test": int(test_values.size), "rmse": scores["rmse"], "mae": scores["mae"],
        "r2": scores["r2"], "coverage_68": scores.get("coverage_68"), "mean_rmse": baseline,
        "simulate_s": sim_s, "train_s": train_s,
    }  # fmt: skip


DENOISING = {
    "denoise": ("model_ii", {"source.magnitude": 23.0}),
    "denoise_lensfind": ("lensfind_deeplense", {}),
}


def denoise_rows(args: argparse.Namespace, section: str = "denoise") -> dict[str, Any]:
    preset, overrides = DENOISING[section]
    work = args.work / section
    work.mkdir(parents=True, exist_ok=True)
    data = work / "faint.h5"
    sim_s = _simulate(preset, data, args.n, {**overrides, "store_clean": True}, (0.5, 0.5, 0.5))
    noisy_s = _train(data, work / "run_noisy", args.epochs)
    noisy = evaluate_checkpoint(work / "run_noisy", data, work / "eval_noisy")
    shutil.rmtree(work / "run_unet", ignore_errors=True)
    start = time.perf_counter()
    unet = TrainConfig(
        model="unet", model_kwargs={"size": "small"}, task="denoise", batch_size=32,
        epochs=args.denoise_epochs, lr=1e-3, seed=0,
    )  # fmt: skip
    train(unet, data, work / "run_unet")
    unet_s = time.perf_counter() - start
    denoising = evaluate_checkpoint(work / "run_unet", data, work / "eval_unet")
    start = time.perf_counter()
    denoise_files(work / "run_unet", data, work / "denoised", overwrite=True)
    apply_s = time.perf_counter() - start
    clean_data = work / "denoised" / data.name
    denoised_s = _train(clean_data, work / "run_denoised", args.epochs)
    denoised = evaluate_checkpoint(
        work / "run_denoised", clean_data, work / "eval_denoised", allow_mismatch=True
    )
    return {
        "task": section, "preset": preset, "n": args.n, "auc_noisy": noisy["macro_auc"],
        "acc_noisy": noisy["accuracy"], "auc_denoised": denoised["macro_auc"],
        "acc_denoised": denoised["accuracy"], "psnr_db": denoising["psnr_db"],
        "psnr_noisy_db": denoising["psnr_noisy_db"], "ssim": denoising["ssim"],
        "ssim_noisy": denoising["ssim_noisy"], "residual_to_noise": denoising["residual_to_noise"],
        "simulate_s": sim_s, "train_noisy_s": noisy_s, "train_unet_s": unet_s,
        "denoise_s": apply_s, "train_denoised_s": denoised_s,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench_tasks"))
    parser.add_argument("--sections", nargs="+", default=[*REGRESSIONS, *DENOISING])
    parser.add_argument("--n", type=int, default=1500, help="images per dataset")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--denoise-epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"# {platform.processor() or platform.machine()}, {args.threads} torch thread(s)")
    rows = []
    for section in args.sections:
        if section in DENOISING:
            row = denoise_rows(args, section)
        else:
            row = regression_row(section, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
