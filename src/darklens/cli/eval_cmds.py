"""``darklens evaluate`` / ``predict`` / ``export-model``: use trained checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from darklens.cli import app
from darklens.cli._common import (
    MaskFillOption,
    MaskValueOption,
    QuietOption,
    SkipBadOption,
    user_errors,
)
from darklens.cli.progress import counting_bar, staged_bars
from darklens.config import ConfigError

EXPORT_FORMATS = ("onnx",)

CheckpointOption = Annotated[
    list[Path],
    typer.Option(
        "--checkpoint",
        "-c",
        help="Run folder or checkpoint file; repeat to average an ensemble.",
    ),
]
WhichOption = Annotated[
    str, typer.Option("--which", help="Checkpoint of each run folder: best or last.")
]
TtaOption = Annotated[
    bool, typer.Option("--tta", help="Average over the 8 flips/rotations of each image.")
]
BatchOption = Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, cuda:N or auto.")]
AllowMismatchOption = Annotated[
    bool,
    typer.Option(
        "--allow-mismatch",
        help="Score data whose bands, pixel scale or flux units differ from the training set's "
        "(refused by default).",
    ),
]


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"{metrics['n_samples']} images")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if "targets" in metrics:  # regression: per target
        for name, values in metrics["targets"].items():
            for key, value in values.items():
                table.add_row(f"{name} {key}", _fmt(value))
        return table
    if "psnr_db" in metrics:  # denoising
        for key, value in metrics.items():
            if key not in ("n_samples", "evaluation"):
                table.add_row(key, _fmt(value))
        return table
    table.add_row("accuracy", _fmt(metrics["accuracy"]))
    table.add_row("macro AUC (one-vs-rest)", _fmt(metrics["macro_auc"]))
    for name, auc in metrics["auc_per_class"].items():
        table.add_row(f"AUC {name}", _fmt(auc))
    for key, label in (
        ("tpr0", "TPR0"),
        ("tpr10", "TPR10"),
        ("tpr_at_fpr_1e-03", "TPR at FPR 1e-3"),
        ("decision_threshold", "decision threshold"),
        ("precision_at_threshold", "precision at threshold"),
        ("recall_at_threshold", "recall at threshold"),
        ("fp_per_lens", "survey FP per true lens"),
    ):
        if key in metrics:
            table.add_row(label, _fmt(metrics[key]))
    return table


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    checkpoint: CheckpointOption,
    data: Annotated[Path, typer.Option("--data", help="Dataset file (.h5).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to write.")],
    split: Annotated[str, typer.Option("--split", help="train, val, test or all.")] = "test",
    tta: TtaOption = False,
    batch_size: BatchOption = 256,
    device: DeviceOption = "cpu",
    which: WhichOption = "best",
    lens_rate: Annotated[
        float,
        typer.Option(
            "--lens-rate",
            help="Two classes: fraction of survey images that are lenses, for the false "
            "positives expected per true lens (default 1 in 1000).",
        ),
    ] = 1e-3,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Two classes: call a lens when its score exceeds this (default: the "
            "checkpoint's validated threshold).",
        ),
    ] = None,
    allow_mismatch: AllowMismatchOption = False,
    quiet: QuietOption = False,
) -> None:
    """Evaluate checkpoints on a dataset split: metrics table, report.html, metrics.json.

    Two-class (lens-finding) datasets also get TPR0/TPR10, precision and recall at the decision
    threshold, false positives per true lens at --lens-rate, a log-FPR ROC and galleries of the
    worst false positives and missed lenses.
    """
    from darklens.evaluate.run import evaluate_checkpoint

    with staged_bars(not quiet) as progress:
        metrics = evaluate_checkpoint(
            checkpoint,
            data,
            out,
            split=split,
            tta=tta,
            batch_size=batch_size,
            device=device,
            which=which,
            progress=progress,
            threshold=threshold,
            lens_rate=lens_rate,
            allow_mismatch=allow_mismatch,
        )
    console = Console()
    console.print(_metrics_table(metrics))
    console.print(f"report: {out / 'report.html'}", highlight=False, markup=False)


@app.command("predict")
@user_errors
def predict_cmd(
    checkpoint: CheckpointOption,
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Image files (.h5, .npy, .npz, .fits) or folders of them."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Table to write: .csv or .parquet.")],
    tta: TtaOption = False,
    split: Annotated[
        str | None, typer.Option("--split", help="Only this split of .h5 datasets.")
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="Only this array of .npz files.")] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Include subfolders of input folders.")
    ] = False,
    skip_bad: SkipBadOption = False,
    mask_value: MaskValueOption = None,
    mask_fill: MaskFillOption = None,
    batch_size: BatchOption = 256,
    device: DeviceOption = "cpu",
    which: WhichOption = "best",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output table.")
    ] = False,
    rank: Annotated[
        bool,
        typer.Option(
            "--rank",
            help="Two-class checkpoints: sort rows by lens score, highest first, with a rank "
            "column.",
        ),
    ] = False,
    allow_mismatch: AllowMismatchOption = False,
    quiet: QuietOption = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Score on this Ray cluster with Ray Data (local, auto or HOST:PORT); --out is "
            "then a folder of Parquet files.",
        ),
    ] = None,
    ray_workers: Annotated[
        int, typer.Option("--ray-workers", help="With --ray: scoring actors.")
    ] = 1,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", help="With --ray: GPUs per scoring actor.")
    ] = 0.0,
) -> None:
    """Predict class probabilities for image files; one table row per image.

    A Bologna lens-finding challenge folder (holding Public/Band1...) given alone is read as its
    multi-band images, one row per challenge ID; --mask-value / --mask-fill set how its masked
    pixels are filled, as in `darklens import-lensfind`; its bands are put in the model's band
    order. Inputs whose bands, pixel scale (FITS WCS) or flux units differ from the training
    data are refused unless --allow-mismatch. FITS inputs with a WCS get ra_deg/dec_deg columns.
    """
    from darklens.data.bologna import parse_mask_fill
    from darklens.predict.batch import predict_files

    if ray is not None:
        from darklens.predict.distributed import predict_ray

        if rank or mask_value is not None or mask_fill is not None:
            raise ConfigError("--rank, --mask-value and --mask-fill do not apply with --ray")
        rows = predict_ray(
            checkpoint,
            inputs,
            out,
            address=ray,
            workers=ray_workers,
            gpus_per_worker=gpus_per_worker,
            tta=tta,
            batch_size=batch_size,
            device=device,
            skip_bad=skip_bad,
            split=split,
            npz_key=key,
            recursive=recursive,
            which=which,
            overwrite=overwrite,
        )
        Console().print(f"wrote {rows} rows to the Parquet folder {out}", highlight=False)
        return

    errors = Console(stderr=True)
    skipped = []

    def report_skip(item: Any) -> None:
        skipped.append(item)
        errors.print(
            f"skipped {item.source}: {item.reason}", highlight=False, soft_wrap=True, markup=False
        )

    with counting_bar("predicting", None, enabled=not quiet) as advance:
        rows = predict_files(
            checkpoint,
            inputs,
            out,
            tta=tta,
            batch_size=batch_size,
            device=device,
            skip_bad=skip_bad,
            split=split,
            npz_key=key,
            recursive=recursive,
            which=which,
            overwrite=overwrite,
            rank=rank,
            on_skip=report_skip,
            progress=advance,
            mask_value=mask_value,
            mask_fill=None if mask_fill is None else parse_mask_fill(mask_fill),
            allow_mismatch=allow_mismatch,
        )
    note = f" ({len(skipped)} bad input(s) skipped)" if skipped else ""
    Console().print(f"wrote {rows} rows to {out}{note}", highlight=False, markup=False)


@app.command("denoise")
@user_errors
def denoise_cmd(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", help="Denoising run folder or checkpoint file.")
    ],
    inputs: Annotated[
        list[Path], typer.Argument(help="Image files (.h5, .npy, .fits) or folders of them.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the files into.")],
    tta: TtaOption = False,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Include subfolders of input folders.")
    ] = False,
    batch_size: BatchOption = 64,
    device: DeviceOption = "cpu",
    which: WhichOption = "best",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing output files.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Denoise image files with a denoising checkpoint (darklens train --set task=denoise).

    Writes a file of the same name and kind per input into --out: datasets keep their labels,
    splits and truth; FITS files keep every header.
    """
    from darklens.predict.denoising import denoise_files

    with counting_bar("denoising", None, enabled=not quiet) as advance:
        written = denoise_files(
            checkpoint,
            inputs,
            out,
            which=which,
            tta=tta,
            batch_size=batch_size,
            device=device,
            overwrite=overwrite,
            recursive=recursive,
            progress=advance,
        )
    Console().print(f"wrote {len(written)} file(s) to {out}", highlight=False, markup=False)


@app.command("export-model")
@user_errors
def export_model_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder or checkpoint file.")],
    format_: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Model file (default: <run>/<which>.onnx)."),
    ] = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 17,
    static_batch: Annotated[
        bool, typer.Option("--static-batch", help="Fix the batch size to 1.")
    ] = False,
    which: WhichOption = "best",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing export files.")
    ] = False,
) -> None:
    """Export a checkpoint's network (input: preprocessed images) plus a preprocessing spec."""
    if format_ not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {format_!r}; available: {', '.join(EXPORT_FORMATS)}"
        )
    from darklens.predict.onnx_export import export_onnx

    result = export_onnx(
        run, out, which=which, opset=opset, dynamic_batch=not static_batch, overwrite=overwrite
    )
    Console().print(
        f"wrote {result.model_path} and {result.spec_path} (onnxruntime matches torch within "
        f"{result.max_abs_diff:.1e})",
        highlight=False,
    )
