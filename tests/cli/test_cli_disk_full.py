"""A full disk ends every writing verb with one line, no temporary files and a non-zero status
(issue 12, item 3). The disk is filled by monkeypatching writes to raise ENOSPC, and for
``simulate`` for real with a file size limit (RLIMIT_FSIZE) in a child process."""

from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from typer.testing import CliRunner

from darklens.cli import app

runner = CliRunner()


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _leftovers(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.rglob("*") if p.name.endswith((".partial", ".tmp"))
    )


def _assert_one_line(result, written: Path) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines == [f"error: no space left on device writing {written}"], result.output


def test_simulate_on_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(h5py.Dataset, "__setitem__", _enospc)
    out = tmp_path / "s.h5"
    result = runner.invoke(app, ["simulate", "--n-per-class", "2", "--quiet", "--out", str(out)])
    _assert_one_line(result, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_predict_on_a_full_disk(tmp_path, monkeypatch, trained_run, toy_h5):
    from darklens.predict import batch

    monkeypatch.setattr(batch.PredictionWriter, "write", _enospc)
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", "-c", str(trained_run), str(toy_h5), "--out", str(out)])
    _assert_one_line(result, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_export_on_a_full_disk(tmp_path, monkeypatch, toy_h5):
    from darklens.data import deeplense

    monkeypatch.setattr(deeplense.np, "save", _enospc)
    out = tmp_path / "tree"
    result = runner.invoke(app, ["export", str(toy_h5), "--out", str(out)])
    _assert_one_line(result, out)
    assert not list(out.rglob("*.npy")) and _leftovers(tmp_path) == []


def test_train_on_a_full_disk(tmp_path, monkeypatch, toy_h5):
    from darklens import runs as checkpoint

    real_fdopen = checkpoint.os.fdopen

    class _Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fdopen", lambda fd, mode: _Full(real_fdopen(fd, mode)))
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", "--data", str(toy_h5), "--model", "deeplense_cnn", "--epochs", "1",
         "--batch-size", "16", "--out", str(out), "--quiet"],
    )
    _assert_one_line(result, out)
    assert _leftovers(tmp_path) == []


def test_import_on_a_full_disk(tmp_path, monkeypatch):
    folder = tmp_path / "in" / "cdm"
    folder.mkdir(parents=True)
    for k in range(3):
        np.save(folder / f"{k}.npy", np.ones((8, 8)))
    monkeypatch.setattr(h5py.Dataset, "__setitem__", _enospc)
    out = tmp_path / "i.h5"
    result = runner.invoke(app, ["import", str(tmp_path / "in"), "--out", str(out)])
    _assert_one_line(result, out)
    assert not out.exists() and _leftovers(tmp_path) == []


def _file_size_limit(limit_bytes: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_simulate_past_a_real_file_size_limit_neither_crashes_nor_floods(tmp_path):
    out = tmp_path / "s.h5"
    command = [sys.executable, "-c", "from darklens.cli import app; app()", "simulate",
               "--n-per-class", "40", "--quiet", "--out", str(out)]
    result = subprocess.run(
        command, preexec_fn=_file_size_limit(200_000), capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert result.stderr.strip() == f"error: file size limit reached writing {out}"
    assert not out.exists() and _leftovers(tmp_path) == []


def test_simulate_refuses_what_cannot_fit_before_starting(tmp_path):
    out = tmp_path / "huge.h5"
    result = runner.invoke(
        app, ["--max-bytes", "1T", "simulate", "--n-per-class", "100000000", "--out", str(out)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is free" in result.output, result.output  # free memory for its tables, or disk
    assert not out.exists()
