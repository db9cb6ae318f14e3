"""The GPU paths in one command: simulation, CPU/GPU agreement, training throughput, on the fly.

    python bench/bench_gpu.py                        # on a GPU machine: about 3 min on an H100
    python bench/bench_gpu.py --device cpu --tiny    # dry run (about 1 min on 2 CPU cores)

Sections, each printed as a Markdown table as soon as it is measured:

1. agreement: for each preset, six images rendered on the CPU and on the device — every drawn
   parameter (truth column) equal bit for bit, the largest pixel difference relative to the peak,
   and the counter-based random bits equal on both;
2. simulation: ``simulate`` end to end into an HDF5 file, per preset and batch size, sized to
   take about ``--seconds`` after a warm-up run (images/s and MB/s written);
3. profile: cProfile of one model_ii and one lens-finding run (top functions by own time);
4. training: the full ``train`` loop at batch 256 (``default`` ResNet-18, the trainer's AMP and
   channels-last choices, data in memory / on the GPU, and lazily read with DataLoader workers)
   against the model's bare forward/backward/step on random tensors, with torch's deterministic
   algorithms on (as ``train`` runs) and off;
5. on the fly: ``train --simulate model_ii`` images/s (rendering + training every step).

``--auc-minutes M`` instead trains ResNet-18 for M minutes on a fixed 24,000-image model_ii
training set and M minutes on fresh images every step, and prints the best validation macro AUC
each reached (about 2·M minutes plus simulation).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.func.rng import counter_bits_numpy, counter_bits_torch, counter_keys
from darklens.simulate.kinds import kind_of
from darklens.train import TrainConfig, train

AGREEMENT_PRESETS = ("model_i", "model_ii", "lensfind_space", "lensfind_ground")
# (preset, batch size, parameter-drawing worker processes) timed end to end; lens finding draws
# per-image parameters in Python, in worker processes on a GPU machine's CPU cores
SIMULATIONS = (
    ("model_ii", 4096, 1),
    ("model_ii", 16384, 1),
    ("model_i", 2048, 1),
    ("lensfind_space", 2048, 1),
    ("lensfind_space", 2048, 12),
    ("lensfind_space", 8192, 12),
    ("lensfind_ground", 2048, 12),
)
MEASURED_TRUTH = ("lensed_snr", "lensed_snr_bands", "magnification")  # computed from pixels


def section(name: str, run, *args) -> None:
    """Run one section; a failure is printed and the next section still runs."""
    try:
        run(*args)
    except Exception:  # a bench keeps going: the other sections' figures still count
        print(f"\n### {name}: FAILED\n\n```\n{traceback.format_exc()}```")


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print(
            "| " + " | ".join(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in row) + " |"
        )


def size_of(config, n: int) -> dict:
    """Size options for about n images (substructure: per class; lens finding: total)."""
    if kind_of(config).name == "substructure":
        return {"n_per_class": max(1, n // len(config.class_names))}
    return {"n": max(2, n), "lens_fraction": (0.5, 0.5, 0.5)}


def agreement(device: str) -> None:
    rows = []
    for name in AGREEMENT_PRESETS:
        config = resolve_config(name)
        kind = kind_of(config)
        labels = np.arange(6) % len(config.class_names)
        cpu = kind.render_block(kind.renderer(config, "cpu"), 3, 0, 6, labels)
        dev = kind.render_block(kind.renderer(config, device), 3, 0, 6, labels)
        columns = [c for c in kind.truth_columns(config) if c not in MEASURED_TRUTH]
        equal = sum(np.array_equal(cpu.truth[c], dev.truth[c], equal_nan=True) for c in columns)
        peak = float(np.abs(cpu.images).max())
        diff = float(np.abs(dev.images - cpu.images).max()) / peak
        rows.append((name, f"{equal}/{len(columns)}", diff))
    keys = counter_keys(7, np.arange(1000), 1)
    on_device = counter_bits_torch(torch.from_numpy(keys.view(np.int64)).to(device), 3, 512)
    same_bits = np.array_equal(
        on_device.cpu().numpy(), counter_bits_numpy(keys, 3, 512).view(np.int64)
    )
    rows.append(("counter bits (1000 images x 512 values)", "equal" if same_bits else "DIFFER", ""))
    table(
        f"CPU vs {device}: parameters equal, pixels",
        ("preset", "truth columns equal", "max |pixel diff| / peak"),
        rows,
    )


def time_simulation(
    name: str, batch: int, workers: int, device: str, seconds: float, work: Path
) -> tuple:
    config = resolve_config(name)
    options = dict(device=device, batch_size=batch, workers=workers, overwrite=True)
    warm = simulate(config, work / "warm.h5", **options, **size_of(config, 2 * batch))
    n = int(max(2 * batch, warm.images_per_second * seconds))
    result = simulate(config, work / "timed.h5", seed=1, **options, **size_of(config, n))
    megabytes = (work / "timed.h5").stat().st_size / 1e6
    rate = result.images_per_second
    return (name, batch, workers, result.n_images, rate, megabytes / result.seconds)


def profile_simulation(name: str, batch: int, device: str, n: int, work: Path) -> None:
    config = resolve_config(name)
    profiler = cProfile.Profile()
    profiler.enable()
    result = simulate(
        config,
        work / "profile.h5",
        device=device,
        batch_size=batch,
        overwrite=True,
        **size_of(config, n),
    )
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    print(
        f"\n### cProfile: {name}, batch {batch}, {result.n_images} images in "
        f"{result.seconds:.2f} s ({result.images_per_second:,.0f} images/s)\n"
    )
    print("```\n" + "\n".join(out.getvalue().strip().splitlines()[4:]) + "\n```")


def bare_rate(device: str, batch: int, steps: int, deterministic: bool, image: int = 64) -> float:
    """Images/s of forward + loss + backward + AdamW step on random tensors, as ``train`` sets
    the model up on this device (AMP fp16 + GradScaler and channels-last on CUDA)."""
    from darklens.models import create_model

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    memory = torch.channels_last if cuda else torch.preserve_format
    model = create_model("default", in_chans=1, num_classes=3, img_size=image)
    model = model.to(dev, memory_format=memory).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda") if cuda else None
    x = torch.randn(batch, 1, image, image, device=dev).contiguous(memory_format=memory)
    y = torch.randint(0, 3, (batch,), device=dev)

    def step() -> None:
        with torch.autocast(
            dev.type, dtype=torch.float16 if cuda else torch.bfloat16, enabled=cuda
        ):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

    for _ in range(3):
        step()
    synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(dev)
    torch.use_deterministic_algorithms(False)
    return batch * steps / (time.perf_counter() - t0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loop_rate(data: Path, device: str, batch: int, work: Path, **settings) -> float:
    """Images/s of the last of two epochs of ``train`` (the first warms up)."""
    config = TrainConfig(
        data=str(data), model="default", batch_size=batch, epochs=2, device=device, **settings
    )
    result = train(config, None, tempfile.mkdtemp(dir=work))
    return result.history[-1]["images_per_s"]


def training(device: str, batch: int, n_per_class: int, steps: int, work: Path) -> None:
    data = simulate(
        resolve_config("model_ii"),
        work / "train.h5",
        n_per_class=n_per_class,
        device=device,
        batch_size=4096,
        overwrite=True,
    ).path
    bare = {True: 0.0, False: 0.0}
    for deterministic in (True, False, True, False):  # alternated, best of two each
        rate = bare_rate(device, batch, steps, deterministic)
        bare[deterministic] = max(bare[deterministic], rate)
    rows = [
        ("bare step, deterministic algorithms (as train runs)", bare[True], 1.0),
        ("bare step, deterministic off", bare[False], bare[False] / bare[True]),
    ]
    for what, settings in (
        ("train loop, split in memory (on the GPU when it fits)", {"in_memory": True}),
        (
            "train loop, lazy HDF5 reads, 8 DataLoader workers",
            {"in_memory": False, "num_workers": 8},
        ),
    ):
        rate = loop_rate(data, device, batch, work, **settings)
        rows.append((what, rate, rate / bare[True]))
    onthefly = TrainConfig(
        model="default",
        batch_size=batch,
        epochs=2,
        device=device,
        simulate={"preset": "model_ii", "steps_per_epoch": steps, "eval_images": 2 * batch},
    )
    rate = train(onthefly, None, tempfile.mkdtemp(dir=work)).history[-1]["images_per_s"]
    rows.append(("train --simulate model_ii (render + train every step)", rate, rate / bare[True]))
    table(
        f"training at batch {batch} (default ResNet-18, model_ii 64x64, {device})",
        ("what", "images/s", "vs bare (deterministic)"),
        rows,
    )


def auc_per_minute(device: str, minutes: float, work: Path, scale: float = 1.0) -> None:
    """Best validation macro AUC within ``minutes`` of training: a fixed 24,000-image model_ii
    training set against fresh images every step (same model, batch 256, 30-epoch schedule)."""
    data = simulate(
        resolve_config("model_ii"),
        work / "fixed.h5",
        n_per_class=max(20, int(10_000 * scale)),
        device=device,
        batch_size=4096,
        overwrite=True,
        seed=1,
    ).path
    started: dict[str, float] = {}

    def budget(name: str):
        def stop(row: dict) -> bool:
            return time.perf_counter() - started[name] > 60 * minutes

        return stop

    runs = {
        "fixed 24,000-image file": TrainConfig(
            data=str(data), batch_size=256, epochs=30, device=device, lr=2e-3, warmup_epochs=1
        ),
        "on the fly (fresh every step)": TrainConfig(
            batch_size=256,
            epochs=30,
            device=device,
            lr=2e-3,
            warmup_epochs=1,
            simulate={
                "preset": "model_ii",
                "steps_per_epoch": max(1, int(94 * scale)),
                "eval_images": max(30, int(3000 * scale)),
            },
        ),
    }
    rows = []
    for name, config in runs.items():
        started[name] = time.perf_counter()
        result = train(config, None, tempfile.mkdtemp(dir=work), should_stop=budget(name))
        spent = (time.perf_counter() - started[name]) / 60
        rows.append(
            (name, result.epochs_completed, spent, result.best_val_auc, result.best_val_auc / spent)
        )
    table(
        f"macro AUC within {minutes} GPU-minute(s) ({device})",
        ("training data", "epochs", "minutes", "best val macro AUC", "AUC per minute"),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="small sizes: a CPU dry run")
    parser.add_argument("--seconds", type=float, default=6.0, help="per simulation timing")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: tmp)")
    parser.add_argument(
        "--auc-minutes",
        type=float,
        default=0.0,
        help="only compare validation AUC reached in this many minutes: file vs on the fly",
    )
    args = parser.parse_args()
    scale = 1 / 64 if args.tiny else 1.0
    print(
        f"darklens bench_gpu: {platform.node()}, torch {torch.__version__}, device "
        f"{torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else 'cpu'}"
    )
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        if args.auc_minutes > 0:
            auc_per_minute(args.device, args.auc_minutes, work, scale)
            print(f"\nbench_gpu: {time.perf_counter() - t0:.0f} s")
            return
        section("agreement", agreement, args.device)
        seconds = args.seconds * (0.1 if args.tiny else 1)
        rows = []
        for name, batch, workers in SIMULATIONS:
            section(
                f"simulate {name}",
                lambda *a: rows.append(time_simulation(*a)),
                name,
                max(16, int(batch * scale)),
                min(workers, 2) if args.tiny else workers,
                args.device,
                seconds,
                work,
            )
        table(
            f"simulate end to end into HDF5 ({args.device})",
            ("preset", "batch", "draw workers", "images", "images/s", "MB/s written"),
            rows,
        )
        for name, batch, n in (("model_ii", 16384, 100_000), ("lensfind_space", 8192, 30_000)):
            section(
                f"profile {name}",
                profile_simulation,
                name,
                max(16, int(batch * scale)),
                args.device,
                int(n * scale),
                work,
            )
        section(
            "training",
            training,
            args.device,
            32 if args.tiny else 256,
            40 if args.tiny else 8000,
            3 if args.tiny else 60,
            work,
        )
        print(f"\nbench_gpu: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
