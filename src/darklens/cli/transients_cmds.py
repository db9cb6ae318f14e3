"""Lensed-transient verbs: ``darklens import-deepgravilens`` (simulate with ``darklens simulate
--preset transients_des_deep``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from darklens.cli import app
from darklens.cli._common import (
    DatasetOutOption,
    OverwriteDatasetOption,
    counts_table,
    user_errors,
)
from darklens.cli.data_cmds import parse_fractions


@app.command("import-deepgravilens")
@user_errors
def import_deepgravilens_cmd(
    directory: Annotated[
        Path, typer.Argument(help="DeepGraviLens release folder, its dataset/ or a subset folder.")
    ],
    out: DatasetOutOption,
    subset: Annotated[
        str,
        typer.Option(help="des_deep_data, high_cad_data, full_data or lsst_data."),
    ] = "des_deep_data",
    split: Annotated[str, typer.Option(help="Train,val,test fractions.")] = "0.7,0.15,0.15",
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    dedupe: Annotated[
        bool,
        typer.Option(
            "--dedupe/--no-dedupe",
            help="Keep rotated/mirrored copies of an image in one split (else only count them).",
        ),
    ] = True,
    overwrite: OverwriteDatasetOption = False,
) -> None:
    """Import one DeepGraviLens subset (coadds + light curves) into a darklens dataset file."""
    from darklens.data.deepgravilens import CLASS_NAMES, import_deepgravilens

    report = import_deepgravilens(
        directory,
        out,
        subset=subset,
        split=parse_fractions(split),
        seed=seed,
        dedupe=dedupe,
        overwrite=overwrite,
    )
    console = Console()
    title = f"{report.output} ({report.subset}, T={report.n_epochs})"
    console.print(counts_table(title, report.counts, CLASS_NAMES))
    console.print(
        f"{report.duplicate_images} images in {report.duplicate_groups} groups of dihedral "
        f"duplicates; {report.cross_split_groups} groups span more than one split"
        + (" (kept together: --dedupe)" if report.deduped else "")
    )
    if report.ignored_metadata:
        console.print(f"metadata not kept as truth: {', '.join(report.ignored_metadata)}")
