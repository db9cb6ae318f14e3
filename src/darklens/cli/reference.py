"""The CLI reference as Markdown, generated from the typer app itself (the documentation site's
``cli.md`` page is this text), so the reference never drifts from the commands."""

from __future__ import annotations

import typer
import typer.main

from darklens.cli import app

PLACEHOLDER = "<!-- darklens-cli-reference -->"


def _cell(text: str) -> str:
    """Text that fits in one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _argument(param) -> str:
    name = param.name.upper() + ("..." if param.nargs == -1 else "")
    return name if param.required else f"[{name}]"


def _command_markdown(name: str, command, root: typer.Context) -> str:
    ctx = typer.Context(command, info_name=name, parent=root)
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    usage = " ".join([f"darklens {name}", "[OPTIONS]"] + [_argument(p) for p in arguments])
    rows = []
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is None:  # hidden
            continue
        names, text = record
        rows.append(f"| `{_cell(names)}` | {_cell(text)} |")
    help_text = (command.help or "").strip()
    parts = [f"## `darklens {name}`", help_text, f"```\n{usage}\n```"]
    if rows:
        parts.append("| argument / option | description |\n|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


def cli_reference_markdown() -> str:
    """Every ``darklens`` command, in the order ``darklens --help`` lists them: its help, usage
    and a table of its arguments and options (with defaults)."""
    group = typer.main.get_command(app)
    root = typer.Context(group, info_name="darklens")
    intro = (
        "Every command prints this help with `--help`. A user error (a missing file, a bad "
        "option value) ends with a one-line message and exit status 2."
    )
    sections = [
        _command_markdown(name, command, root)
        for name, command in group.commands.items()
        if not command.hidden
    ]
    return "\n\n".join([intro, *sections]) + "\n"
