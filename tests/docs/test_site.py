"""The documentation site builds with warnings as errors (`mkdocs build --strict`), with the CLI
reference generated from the typer app and the API reference from the docstrings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_site_builds_strict_with_generated_references(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(site)],
        cwd=tmp_path,  # mkdocs-jupyter keeps its cache under the working directory
        capture_output=True,
        text=True,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    cli = (site / "cli.html").read_text()
    for command in ("simulate", "export", "import", "train", "evaluate", "predict"):
        assert f"darklens {command}" in cli, command
    assert "--layout" in cli and "parquet" in cli  # options with their help
    api = (site / "api" / "data.html").read_text()
    assert "TorchLensDataset" in api and "InMemoryDataset" in api
    tutorials = sorted(p.stem for p in (site / "tutorials").glob("*.html"))
    notebooks = sorted(p.stem for p in (ROOT / "docs" / "tutorials").glob("*.ipynb"))
    assert set(notebooks) <= set(tutorials)
