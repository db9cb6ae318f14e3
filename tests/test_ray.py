"""--ray without Ray, with an unreachable address or half the options: clear errors, fast."""

import sys
import time

import pytest
from typer.testing import CliRunner

from darklens._ray import connect
from darklens.cli import app
from darklens.config import ConfigError


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"pip install 'darklens\[ray\]'"):
        connect("local")


def test_unreachable_cluster_fails_fast_with_its_address():
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster at 127.0.0.1:9"):
        connect("127.0.0.1:9")
    assert time.monotonic() - started < 10
    with pytest.raises(ConfigError, match="HOST:PORT"):
        connect("nowhere")


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    half = runner.invoke(app, ["simulate", "--out", str(tmp_path / "a.h5"), "--shards", "2"])
    assert half.exit_code == 2 and "--ray and --shards go together" in half.output
    args = ["simulate", "--out", str(tmp_path / "a.h5"), "--n-per-class", "2"]
    unreachable = runner.invoke(app, [*args, "--ray", "127.0.0.1:9", "--shards", "2"])
    assert unreachable.exit_code == 2 and "cannot reach" in unreachable.output
    assert "Traceback" not in unreachable.output and not (tmp_path / "a.h5").exists()
