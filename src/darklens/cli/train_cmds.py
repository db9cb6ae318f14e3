"""``darklens train``: one training recipe for any model on any darklens dataset."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from darklens.cli import app
from darklens.cli._common import user_errors
from darklens.config import parse_assignments


@app.command("train")
@user_errors
def train_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (or resume).")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset file (.h5).")] = None,
    simulate: Annotated[
        str | None,
        typer.Option(
            "--simulate",
            help="Train on fresh images of this simulator preset, rendered on the training "
            "device every step (instead of --data).",
        ),
    ] = None,
    sim_set: Annotated[
        list[str] | None,
        typer.Option("--sim-set", help="Override one simulator setting: key=value (--simulate)."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="Registered model name.")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML file of training settings.")
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Number of epochs.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch size (per process under DDP).")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate.")] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")
    ] = None,
    pretrained: Annotated[
        Path | None,
        typer.Option(
            "--pretrained",
            help="Start from local weights: a darklens run or checkpoint, or a timm/torch file.",
        ),
    ] = None,
    adapt_to: Annotated[
        Path | None,
        typer.Option(
            "--adapt-to",
            help="Unlabelled target dataset (.h5) to adapt to; pick the method with "
            "--set adaptation=adabn or dann.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last epoch.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one setting: key=value (e.g. augment.shift_px=0.5)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Train a model; settings: defaults < --config < options < --set (resume: the run's own)."""
    from darklens.cli.progress import TrainProgress
    from darklens.recipes import fit_from_cli

    options = {
        "data": None if data is None else str(data),
        "model": model,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "device": device,
        "pretrained": None if pretrained is None else str(pretrained),
        "adapt_to": None if adapt_to is None else str(adapt_to),
    }
    if simulate is not None or sim_set:
        options["simulate"] = {
            **({"preset": simulate} if simulate is not None else {}),
            **({"overrides": parse_assignments(sim_set)} if sim_set else {}),
        }
    callbacks = [] if quiet else [TrainProgress()]
    result = fit_from_cli(
        out, config, options, parse_assignments(set_ or []), resume=resume, callbacks=callbacks
    )
    if not quiet:
        monitored = ""
        if result.monitor != "val_auc":
            monitored = f", {result.monitor} {result.best_value:.4f}"
        auc = f"val macro AUC {result.best_val_auc:.4f}"
        if math.isnan(result.best_val_auc):  # regression or denoising
            auc, monitored = f"{result.monitor} {result.best_value:.4f}", ""
        Console().print(
            f"best {auc}{monitored} at epoch "
            f"{result.best_epoch} ({result.epochs_completed} epochs) -> {result.best_checkpoint}",
            highlight=False,
        )
