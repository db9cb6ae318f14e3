"""Benchmark inference: images per second of torch (1 and 2 threads) and onnxruntime, on CPU.

For each model (randomly initialised; speed does not depend on the weights) a batch of random
preprocessed 64x64x1 images goes through the network plus softmax repeatedly, after one warm-up
batch, until ``--seconds`` have passed (at least two batches). Both wall-clock images/s and
images per CPU-second are printed: on a shared, busy machine the CPU-second figure is the more
stable one, the wall figure shows what extra threads buy. The onnxruntime rows run the graph
that ``darklens export-model`` writes.

    PYTHONPATH=src python bench/bench_inference.py
    PYTHONPATH=src python bench/bench_inference.py --models deeplense_cnn --threads 1 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from darklens.models import create_model, resolve_model_name
from darklens.predict.onnx_export import INPUT_NAME, OUTPUT_NAME, ProbabilityModel, export_to_bytes


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def time_batches(
    run_batch: Callable[[], object], batch: int, seconds: float
) -> tuple[float, float]:
    """(images per wall-second, images per CPU-second) of ``run_batch`` after one warm-up."""
    run_batch()
    batches = 0
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    while batches < 2 or time.perf_counter() - wall_start < seconds:
        run_batch()
        batches += 1
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    return batch * batches / wall, batch * batches / cpu


def torch_rate(model: torch.nn.Module, x: torch.Tensor, threads: int, seconds: float):
    torch.set_num_threads(threads)
    wrapped = ProbabilityModel(model).eval()

    def run_batch() -> torch.Tensor:
        with torch.inference_mode():
            return wrapped(x)

    return time_batches(run_batch, x.shape[0], seconds)


def onnx_rate(onnx_bytes: bytes, x: np.ndarray, threads: int, seconds: float):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    return time_batches(lambda: session.run([OUTPUT_NAME], {INPUT_NAME: x}), x.shape[0], seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "deeplense_cnn"])
    parser.add_argument("--size", type=int, default=64, help="image side, px")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    args = parser.parse_args()

    load_before = os.getloadavg()
    print(
        f"{cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}; torch "
        f"{torch.__version__}, onnxruntime {ort.__version__}; load average {load_before[0]:.2f} "
        f"at start"
    )
    print(
        f"inference (network + softmax) on random {args.size}x{args.size}x1 images, batch "
        f"{args.batch}, randomly initialised models, >= {args.seconds:g} s per row"
    )
    print("| model | architecture | runtime | threads | images/s | images/CPU-s |")
    print("|---|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, args.size, args.size, generator=generator)
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, in_chans=1, num_classes=3, img_size=args.size).eval()
        onnx_bytes = export_to_bytes(model, x[:2])
        arch = resolve_model_name(name)
        for threads in args.threads:
            wall, cpu = torch_rate(model, x, threads, args.seconds)
            print(f"| {name} | {arch} | torch | {threads} | {wall:,.0f} | {cpu:,.0f} |", flush=True)
        for threads in args.threads:
            wall, cpu = onnx_rate(onnx_bytes, x.numpy(), threads, args.seconds)
            print(f"| {name} | {arch} | onnxruntime | {threads} | {wall:,.0f} | {cpu:,.0f} |")
    load_after = os.getloadavg()
    print(f"load average {load_after[0]:.2f} at the end")


if __name__ == "__main__":
    main()
