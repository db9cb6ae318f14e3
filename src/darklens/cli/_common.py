"""Shared helpers for CLI modules: one consistent way to report user errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

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
