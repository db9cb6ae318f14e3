"""Shared helpers for CLI modules: user-error reporting, common options and report tables."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from darklens.config import ConfigError
from darklens.guards import describe_os_error, is_disk_full

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
EXIT_USER_ERROR = 2
EXIT_IO_ERROR = 1
_BARE_KEY = re.compile(r"^[A-Za-z_][\w.\-]*$")


def error_line(message: str) -> None:
    """Print ``error: message`` on one line to stderr; the text is never read as rich markup."""
    text = " ".join(str(message).split()) or "unknown error"
    console.print(
        f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True, emoji=False
    )


def user_error_message(err: BaseException) -> str:
    """The line to show for a user error (a bare ``KeyError('sha256')`` says what is missing)."""
    if isinstance(err, KeyError):
        key = err.args[0] if err.args else ""
        if isinstance(key, str) and _BARE_KEY.match(key):
            return f"missing entry {key!r}: the input is incomplete or from another version"
        return str(key)
    return str(err)


def _output_of(kwargs: Mapping[str, object]) -> object:
    return kwargs.get("out") or kwargs.get("out_dir")


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator for command functions: known user errors become one line and exit status 2;
    I/O errors (a full disk) one line, temporary files already removed, and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            error_line(user_error_message(err))
            raise typer.Exit(code=EXIT_USER_ERROR) from None
        except OSError as err:
            error_line(describe_os_error(err, _output_of(kwargs)))
            code = EXIT_IO_ERROR if is_disk_full(err) else EXIT_USER_ERROR
            raise typer.Exit(code=code) from None

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
        table.add_row(escape(str(item.path)), escape(item.reason))
    return table
