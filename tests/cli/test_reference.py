"""The generated CLI reference documents every command and every option of the typer app."""

from __future__ import annotations

import typer.main

from darklens.cli import app
from darklens.cli.reference import cli_reference_markdown


def test_every_command_and_option_is_documented():
    text = cli_reference_markdown()
    group = typer.main.get_command(app)
    assert len(group.commands) >= 10
    for name, command in group.commands.items():
        section = text.split(f"## `darklens {name}`\n")[1].split("\n## ")[0]
        assert f"darklens {name} [OPTIONS]" in section, name
        for param in command.params:
            if param.param_type_name == "option":
                assert f"`{param.opts[-1]}" in section or param.opts[-1] in section, (
                    name,
                    param.opts,
                )
    assert "| `--layout <str>` |" in text.split("## `darklens export`")[1]


def test_table_cells_escape_pipes_and_newlines():
    from darklens.cli.reference import _cell

    assert _cell("a | b\n   c") == "a \\| b c"
