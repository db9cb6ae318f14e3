"""Shared helpers for CLI modules: user-error reporting, common options and report tables."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from darklens.config import ConfigError

console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")

# Errors that are the user's input, not a darklens bug: print the message, exit with status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    FileNotFoundError,
    FileExistsError,
    KeyError,
    ValueError,
)


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for command functions: known user errors become a one-line message, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


# -- options shared by several commands ------------------------------------------------------------
DatasetOutOption = Annotated[Path, typer.Option("--out", "-o", help="Dataset file to write (.h5).")]
OverwriteDatasetOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing dataset file.")
]
SkipBadOption = Annotated[
    bool,
    typer.Option(
        "--skip-bad",
        help="Leave out bad inputs (unreadable files, incomplete IDs) and list them instead of "
        "failing.",
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No progress output.")]
MaskValueOption = Annotated[
    float | None,
    typer.Option(
        "--mask-value", help="Bologna challenge folders: pixel value marking masked pixels (100)."
    ),
]
MaskFillOption = Annotated[
    str | None,
    typer.Option(
        "--mask-fill",
        help="Bologna challenge folders: fill masked pixels with zero (default), median (of "
        "the band's unmasked pixels) or a number.",
    ),
]


# -- report tables -------------------------------------------------------------------------------
def counts_table(
    title: str, counts: Mapping[str, Mapping[str, int]], class_names: Sequence[str]
) -> Table:
    """Images per split (rows) and class (columns), with a total column."""
    table = Table(title=title)
    for column in ("split", *class_names, "total"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, per_class in counts.items():
        values = [per_class[name] for name in class_names]
        table.add_row(split, *map(str, values), str(sum(values)))
    return table


def skipped_table(skipped: Sequence, what: str = "file") -> Table:
    """The inputs an import left out (items with ``path`` and ``reason``) and why."""
    table = Table(title=f"skipped {len(skipped)} bad {what}(s)")
    table.add_column(what)
    table.add_column("reason")
    for item in skipped:
        table.add_row(item.path, item.reason)
    return table
