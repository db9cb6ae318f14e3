"""``darklens import`` / ``darklens export``: convert community folder layouts to and from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from darklens.cli import app
from darklens.cli._common import (
    DatasetOutOption,
    OverwriteDatasetOption,
    SkipBadOption,
    counts_table,
    skipped_table,
    user_errors,
)
from darklens.cli.progress import staged_bars
from darklens.data.deeplense import CLASS_NAMES, ImportReport, export_deeplense, import_deeplense

EXPORT_LAYOUTS = {"deeplense": export_deeplense}


def _print_report(report: ImportReport) -> None:
    console = Console()
    console.print(
        counts_table(f"{report.output} ({report.layout} layout)", report.counts, CLASS_NAMES)
    )
    shape = "x".join(map(str, report.image_shape))
    console.print(f"{report.n_images} images of shape {shape} (C x H x W)")
    if report.skipped:
        console.print(skipped_table(report.skipped))


@app.command("import")
@user_errors
def import_cmd(
    directory: Annotated[
        Path, typer.Argument(help="DeepLense folder: class, split or Model_X folders.")
    ],
    out: DatasetOutOption,
    skip_bad: SkipBadOption = False,
    overwrite: OverwriteDatasetOption = False,
) -> None:
    """Import DeepLense .npy folders into one darklens dataset file."""
    with staged_bars() as progress:
        report = import_deeplense(
            directory, out, skip_bad=skip_bad, overwrite=overwrite, progress=progress
        )
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
    Console().print(f"wrote {written} images to {out} ({layout} layout)", markup=False)
