"""The ``darklens`` command: a thin layer that parses options and calls one library function.

Each group of verbs lives in its own module and registers its commands on :data:`app`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="darklens",
    help="Deep learning on strong gravitational lensing data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    max_bytes: str | None = typer.Option(
        None,
        "--max-bytes",
        help="Largest allocation a file may ask for (e.g. 2G; default 8G or $DARKLENS_MAX_BYTES): "
        "sizes declared in headers are checked against it and free memory before reading.",
    ),
) -> None:
    """Deep learning on strong gravitational lensing data."""
    from darklens.cli._common import EXIT_USER_ERROR, error_line
    from darklens.guards import set_max_bytes

    try:
        set_max_bytes(max_bytes)
    except ValueError as err:
        error_line(f"--max-bytes: {err}")
        raise typer.Exit(code=EXIT_USER_ERROR) from None


# Modules that add commands to `app` (imported for their side effect).
COMMAND_MODULES: tuple[str, ...] = (
    "data_cmds",
    "io_cmds",
    "train_cmds",
    "eval_cmds",
    "quickstart_cmds",
    "lensfind_cmds",
    "transients_cmds",
)

for _module in COMMAND_MODULES:
    importlib.import_module(f"darklens.cli.{_module}")
