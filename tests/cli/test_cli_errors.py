"""Every CLI verb meets bad input with one line naming the file/option and exit status 2
(issue 12, item 7): no traceback, no bare key names, no text eaten by rich markup."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import FORMAT

runner = CliRunner()


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of hostile or careless inputs, named by what is wrong with them."""
    root = tmp_path_factory.mktemp("bad")
    (root / "text.h5").write_text("not HDF5")
    (root / "text.npy").write_text("not numpy")
    (root / "folder").mkdir()
    (root / "existing_dir").mkdir()
    (root / "bad.yaml").write_text("a: [1, 2\nb: :\n")
    with h5py.File(root / "counts.h5", "w") as f:  # 60 images, 50 labels
        f["images"] = np.zeros((60, 1, 8, 8), np.float32)
        f["labels"] = np.zeros(50, np.int64)
        f["split"] = np.zeros(60, np.uint8)
        f.attrs.update(format=FORMAT, format_version=1, class_names='["a", "b"]',
                       split_names='["train", "val", "test"]', manifest="{}")
    export = root / "unfinished_export"
    (export / "train" / "cdm").mkdir(parents=True)
    np.save(export / "train" / "cdm" / "0.npy", np.ones((8, 8)))
    (export / ".darklens-export.json").write_text(
        json.dumps({"files": [], "folders": [], "complete": False})
    )
    (root / "weird:b:name.h5").write_text("rich markup must not eat this name")
    return root


def _broken_checkpoint(trained_run: Path, folder: Path, drop: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name in ("best.json", "best.safetensors"):
        (folder / name).write_bytes((trained_run / name).read_bytes())
    meta = json.loads((folder / "best.json").read_text())
    if drop == "sha256":
        del meta["weights"]["sha256"]
    else:
        del meta[drop]
    (folder / "best.json").write_text(json.dumps(meta))
    return folder


CASES = {
    "info-missing": (["info", "{bad}/missing.h5"], "missing.h5"),
    "info-text": (["info", "{bad}/text.h5"], "text.h5"),
    "info-counts": (["info", "{bad}/counts.h5"], "50 labels but 60 images"),
    "info-folder": (["info", "{bad}/folder"], "folder"),
    "info-markup": (["info", "{bad}/weird:b:name.h5"], "weird:b:name.h5"),
    "show-counts": (["show", "{bad}/counts.h5", "--out", "{tmp}/g.png"], "counts.h5"),
    "simulate-cuda": (
        ["simulate", "--n-per-class", "2", "--device", "cuda", "--out", "{tmp}/s.h5"],
        "cuda",
    ),
    "simulate-yaml": (
        ["simulate", "--n-per-class", "2", "--config", "{bad}/bad.yaml", "--out", "{tmp}/s.h5"],
        "bad.yaml",
    ),
    "simulate-huge": (
        ["simulate", "--n-per-class", "1000000000", "--out", "{tmp}/s.h5"],
        "3,000,000,000 images",
    ),
    "simulate-out-dir": (
        ["simulate", "--n-per-class", "2", "--out", "{bad}/existing_dir"], "existing_dir"
    ),
    "simulate-out-dir-overwrite": (
        ["simulate", "--n-per-class", "2", "--out", "{bad}/existing_dir", "--overwrite"],
        "existing_dir",
    ),
    "simulate-workers": (
        ["simulate", "--n-per-class", "2", "--workers", "0", "--out", "{tmp}/s.h5"], "workers"
    ),
    "simulate-preset": (["simulate", "--preset", "model_v", "--out", "{tmp}/s.h5"], "model_v"),
    "import-missing": (["import", "{bad}/nowhere", "--out", "{tmp}/i.h5"], "nowhere"),
    "import-out-dir": (["import", "{bad}/unfinished_export", "--out", "{bad}/existing_dir"],
                       "existing_dir"),
    "import-unfinished-export": (
        ["import", "{bad}/unfinished_export", "--out", "{tmp}/i.h5"], "unfinished"
    ),
    "export-missing": (["export", "{bad}/missing.h5", "--out", "{tmp}/e"], "missing.h5"),
    "export-counts": (["export", "{bad}/counts.h5", "--out", "{tmp}/e"], "counts.h5"),
    "train-counts": (
        ["train", "--data", "{bad}/counts.h5", "--model", "deeplense_cnn", "--out", "{tmp}/r"],
        "counts.h5",
    ),
    "train-yaml": (["train", "--config", "{bad}/bad.yaml", "--out", "{tmp}/r"], "bad.yaml"),
    "train-model": (
        ["train", "--data", "{toy}", "--model", "no_such_net", "--out", "{tmp}/r"], "no_such_net"
    ),
    "evaluate-missing": (
        ["evaluate", "-c", "{bad}/norun", "--data", "{toy}", "--out", "{tmp}/ev"], "norun"
    ),
    "evaluate-no-sha": (
        ["evaluate", "-c", "{no_sha}", "--data", "{toy}", "--out", "{tmp}/ev"],
        "best.json lacks weights.sha256"
    ),
    "evaluate-no-classes": (
        ["evaluate", "-c", "{no_classes}", "--data", "{toy}", "--out", "{tmp}/ev"], "class_names"
    ),
    "evaluate-counts": (
        ["evaluate", "-c", "{run}", "--data", "{bad}/counts.h5", "--out", "{tmp}/ev"], "counts.h5"
    ),
    "predict-text": (["predict", "-c", "{run}", "{bad}/text.npy", "--out", "{tmp}/p.csv"],
                     "text.npy"),
    "predict-suffix": (["predict", "-c", "{run}", "{toy}", "--out", "{tmp}/p.txt"], "p.txt"),
    "export-model-missing": (["export-model", "{bad}/norun"], "norun"),
    "import-lensfind-missing": (
        ["import-lensfind", "{bad}/nowhere", "--layout", "bologna", "--out", "{tmp}/l.h5"],
        "nowhere",
    ),
    "import-deepgravilens-missing": (
        ["import-deepgravilens", "{bad}/nowhere", "--out", "{tmp}/d.h5"], "nowhere"
    ),
    "check-missing": (["check", "{bad}/missing.h5"], "missing.h5"),
    "max-bytes": (["--max-bytes", "lots", "info", "{toy}"], "--max-bytes"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_line_and_status_2(name, bad, toy_h5, trained_run, tmp_path):
    args, expected = CASES[name]
    values = {
        "bad": bad,
        "tmp": tmp_path,
        "toy": toy_h5,
        "run": trained_run,
        "no_sha": _broken_checkpoint(trained_run, tmp_path / "no_sha", "sha256"),
        "no_classes": _broken_checkpoint(trained_run, tmp_path / "no_cls", "class_names"),
    }
    result = runner.invoke(app, [a.format(**values) for a in args])
    output = result.output
    assert "Traceback" not in output, output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert expected in errors[0], errors[0]


def test_check_reports_every_problem_and_exits_2(bad):
    result = runner.invoke(app, ["check", str(bad / "counts.h5")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "problem: 50 labels but 60 images" in result.output


def test_check_passes_a_good_dataset(toy_h5):
    result = runner.invoke(app, ["check", str(toy_h5)])
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output
