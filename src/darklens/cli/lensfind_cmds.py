"""``darklens import-lensfind``: lens-finding image collections (two classes) to a dataset file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from darklens.cli import app
from darklens.cli._common import (
    DatasetOutOption,
    MaskFillOption,
    MaskValueOption,
    OverwriteDatasetOption,
    QuietOption,
    SkipBadOption,
    counts_table,
    skipped_table,
    user_errors,
)
from darklens.cli.data_cmds import parse_fractions
from darklens.cli.progress import staged_bars
from darklens.data.lensfind_folders import CLASS_NAMES

LAYOUTS = ("bologna", "deeplense")
# Options that only one layout reads: giving them with the other is a mistake worth reporting.
BOLOGNA_ONLY = ("--csv", "--split", "--mask-value", "--mask-fill")
DEEPLENSE_ONLY = ("--val-fraction",)


def _print_report(report: Any, layout: str) -> None:
    console = Console()
    console.print(counts_table(f"{report.output} ({layout} layout)", report.counts, CLASS_NAMES))
    shape = "x".join(map(str, report.image_shape))
    console.print(f"{report.n_images} images of shape {shape} (C x H x W)", highlight=False)
    if layout == "bologna":
        console.print(
            f"{report.survey}-based set, channels {', '.join(report.channels)}; "
            f"{report.masked_pixels} masked pixels in {report.masked_images} images filled",
            highlight=False,
        )
        if report.ignored_columns:
            console.print(
                f"left out non-numeric label columns: {', '.join(report.ignored_columns)}",
                highlight=False,
            )
    if report.skipped:
        console.print(skipped_table(report.skipped, "file or ID"))


def _refuse_foreign(layout: str, given: dict[str, Any]) -> None:
    foreign = BOLOGNA_ONLY if layout == "deeplense" else DEEPLENSE_ONLY
    used = [name for name in foreign if given.get(name) is not None]
    if used:
        raise ValueError(f"{', '.join(used)} do(es) not apply to --layout {layout}")


@app.command("import-lensfind")
@user_errors
def import_lensfind_cmd(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Bologna challenge folder (holding Public/Band1...) or DeepLense lens-finding "
            "folder (train_lenses, train_nonlenses, test_lenses, test_nonlenses)."
        ),
    ],
    layout: Annotated[str, typer.Option("--layout", help="bologna or deeplense.")],
    out: DatasetOutOption,
    csv: Annotated[
        Path | None,
        typer.Option("--csv", help="bologna: label table (default: classifications.csv)."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="bologna: train,val,test fractions (default 0.8,0.1,0.1) or 'test'."
        ),
    ] = None,
    mask_value: MaskValueOption = None,
    mask_fill: MaskFillOption = None,
    val_fraction: Annotated[
        float | None,
        typer.Option("--val-fraction", help="deeplense: share of train_* images for val (0.1)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stratified split.")] = 0,
    skip_bad: SkipBadOption = False,
    overwrite: OverwriteDatasetOption = False,
    quiet: QuietOption = False,
) -> None:
    """Import lens-finding images (classes non_lens, lens) into one darklens dataset file.

    Unlabelled Bologna images (the challenge test set) cannot be imported: rank them with
    `darklens predict -c RUN FOLDER --rank -o ranked.csv`.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    given = {
        "--csv": csv,
        "--split": split,
        "--mask-value": mask_value,
        "--mask-fill": mask_fill,
        "--val-fraction": val_fraction,
    }
    _refuse_foreign(layout, given)
    if layout == "bologna":
        from darklens.data.bologna import MASK_VALUE, import_bologna, parse_mask_fill

        with staged_bars(not quiet) as progress:
            report = import_bologna(
                directory,
                out,
                csv=csv,
                split="test" if split == "test" else parse_fractions(split or "0.8,0.1,0.1"),
                seed=seed,
                mask_value=MASK_VALUE if mask_value is None else mask_value,
                mask_fill="zero" if mask_fill is None else parse_mask_fill(mask_fill),
                skip_bad=skip_bad,
                overwrite=overwrite,
                progress=progress,
            )
    else:
        from darklens.data.lensfind_folders import import_lensfind_folders

        with staged_bars(not quiet) as progress:
            report = import_lensfind_folders(
                directory,
                out,
                val_fraction=0.1 if val_fraction is None else val_fraction,
                seed=seed,
                skip_bad=skip_bad,
                overwrite=overwrite,
                progress=progress,
            )
    _print_report(report, layout)
