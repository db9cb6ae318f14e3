"""Every tutorial notebook runs top to bottom on tiny sizes (DARKLENS_TUTORIAL_SIZE=tiny) and
asserts its headline number; a notebook that raises fails here with the cell and the error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL = "darklens-tests"


def test_every_tutorial_is_listed_in_the_site_navigation():
    mkdocs = (TUTORIALS.parents[1] / "mkdocs.yml").read_text()
    assert len(NOTEBOOKS) >= 7
    for notebook in NOTEBOOKS:
        assert f"tutorials/{notebook.name}" in mkdocs, notebook.name


@pytest.fixture
def kernel_of_this_python(tmp_path, monkeypatch) -> str:
    """A kernelspec that runs this interpreter (not whatever `python3` kernel is installed),
    with one thread per library: the test workers share the machine's cores."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("DARKLENS_TUTORIAL_SIZE", "tiny")
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return KERNEL


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_tutorial_runs_on_tiny_sizes(notebook, kernel_of_this_python, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), (
        "commit tutorials without outputs (the docs show the code; the tests run it)"
    )
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(
        nb,
        kernel_name=kernel_of_this_python,
        timeout=300,
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()
    printed = "".join(
        output.get("text", "") for cell in nb.cells for output in cell.get("outputs", [])
    )
    assert printed.strip(), "the tutorial printed no headline number"
