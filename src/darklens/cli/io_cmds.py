"""``darklens import`` / ``darklens export``: convert community folder layouts to and from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from darklens.cli import app
from darklens.cli._common import user_errors
from darklens.data.deeplense import CLASS_NAMES, ImportReport, export_deeplense, import_deeplense

EXPORT_LAYOUTS = {"deeplense": export_deeplense}


def _print_report(report: ImportReport) -> None:
    console = Console()
    counts = Table(title=f"{report.output} ({report.layout} layout)")
    for column in ("split", *CLASS_NAMES, "total"):
        counts.add_column(column, justify="left" if column == "split" else "right")
    for split, per_class in report.counts.items():
        values = [per_class[name] for name in CLASS_NAMES]
        counts.add_row(split, *map(str, values), str(sum(values)))
    console.print(counts)
    shape = "x".join(map(str, report.image_shape))
    console.print(f"{report.n_images} images of shape {shape} (C x H x W)")
    if report.skipped:
        skipped = Table(title=f"skipped {len(report.skipped)} bad file(s)")
        skipped.add_column("file")
        skipped.add_column("reason")
        for item in report.skipped:
            skipped.add_row(item.path, item.reason)
        console.print(skipped)


@app.command("import")
@user_errors
def import_cmd(
    directory: Annotated[
        Path, typer.Argument(help="DeepLense folder: class, split or Model_X folders.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset file to write (.h5).")],
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip bad files and list them instead of failing.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset file.")
    ] = False,
) -> None:
    """Import DeepLense .npy folders into one darklens dataset file."""
    report = import_deeplense(directory, out, skip_bad=skip_bad, overwrite=overwrite)
    _print_report(report)


@app.command("export")
@user_errors
def export_cmd(
    dataset: Annotated[Path, typer.Argument(help="darklens dataset file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")],
    layout: Annotated[str, typer.Option(help="Folder layout: deeplense.")] = "deeplense",
    split: Annotated[str, typer.Option(help="all, train, val or test.")] = "all",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier darklens export in --out.")
    ] = False,
) -> None:
    """Export a dataset file as a community folder layout of .npy files."""
    if layout not in EXPORT_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; available: {', '.join(EXPORT_LAYOUTS)}")
    written = EXPORT_LAYOUTS[layout](dataset, out, split=split, overwrite=overwrite)
    Console().print(f"wrote {written} images to {out} ({layout} layout)")
