"""`darklens export --layout parquet|hf|fits` and `darklens import` of such folders: round trips,
and one-line errors (exit 2) for files and folders that are not darklens exports."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from tests.helpers import sha256, simulate_tiny

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return simulate_tiny(tmp_path_factory.mktemp("cli"), "lensfind_space", n=8,
                         lens_fraction=(0.5, 0.5, 0.5))  # fmt: skip


@pytest.mark.parametrize("layout", ["hf", "fits"])
def test_export_and_import_round_trip(dataset, layout, tmp_path):
    out = tmp_path / layout
    exported = runner.invoke(app, ["export", str(dataset), "--layout", layout, "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "wrote 8 images" in exported.output and (out / "README.md").is_file()
    back = tmp_path / "back.h5"
    imported = runner.invoke(app, ["import", str(out), "--out", str(back)])
    assert imported.exit_code == 0, imported.output
    assert "non_lens" in imported.output and sha256(back) == sha256(dataset)


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    for fragment in fragments:
        assert fragment in result.output.replace("\n", " "), result.output


def test_bad_inputs_fail_with_one_line(dataset, tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), foreign)
    result = runner.invoke(app, ["import", str(foreign), "--out", str(tmp_path / "a.h5")])
    _one_line_error(result, "no darklens schema")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing to see")
    result = runner.invoke(app, ["import", str(empty), "--out", str(tmp_path / "b.h5")])
    _one_line_error(result, "no image files")
    result = runner.invoke(
        app, ["export", str(dataset), "--layout", "zip", "--out", str(tmp_path / "z")]
    )
    _one_line_error(result, "unknown layout 'zip'", "parquet, hf, fits")
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
