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
