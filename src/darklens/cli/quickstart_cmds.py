"""``darklens quickstart``: the README's main job in one command."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from darklens.cli import app
from darklens.cli._common import user_errors

console = Console()


@app.command()
@user_errors
def quickstart(
    out: Path = typer.Option(Path("darklens-quickstart"), "--out", "-o", help="Output folder."),
    n_per_class: int = typer.Option(2500, help="Simulated images per class."),
    epochs: int = typer.Option(8, help="Training epochs."),
    model: str = typer.Option("default", help="Model to train."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    workers: int = typer.Option(2, help="Simulation worker processes."),
    seed: int = typer.Option(0, help="Seed for data and training."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Simulate a small Model II dataset, train the default model, evaluate, write a report."""
    from darklens.cli.progress import TrainProgress
    from darklens.quickstart import QuickstartConfig, run_quickstart

    config = QuickstartConfig(
        n_per_class=n_per_class,
        epochs=epochs,
        model=model,
        device=device,
        workers=workers,
        seed=seed,
    )
    result = run_quickstart(
        out,
        config,
        say=lambda s: console.print(s, highlight=False),
        callbacks=[] if quiet else [TrainProgress()],
    )
    metrics = result.metrics
    table = Table(title="4/4 test-split results")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("macro AUC (one-vs-rest)", f"{metrics['macro_auc']:.4f}")
    table.add_row("micro AUC", f"{metrics['micro_auc']:.4f}")
    table.add_row("accuracy", f"{metrics['accuracy']:.4f}")
    for name, auc in metrics["auc_per_class"].items():
        table.add_row(f"AUC {name}", "n/a" if auc is None else f"{auc:.4f}")
    total = sum(result.seconds.values())
    table.add_row("time", f"{total / 60:.1f} min")
    console.print(table)
    console.print(f"sample gallery: {result.gallery}")
    console.print(f"report: [bold]{result.report.resolve()}[/] (open it in a browser)")
