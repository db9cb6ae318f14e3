"""CLI round trips for simulate / presets / info / show."""

import numpy as np
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset

runner = CliRunner()


def test_simulate_info_show_round_trip(tmp_path):
    out = tmp_path / "m2.h5"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--preset",
            "model_ii",
            "--n-per-class",
            "6",
            "--split",
            "0.5,0.25,0.25",
            "--seed",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--set",
            "source.magnitude=21",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = LensDataset(out)
    assert len(ds) == 18 and ds.manifest["config"]["source"]["magnitude"] == 21
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0
    assert "no_sub" in info.output and "model_ii" in info.output
    png = tmp_path / "grid.png"
    shown = runner.invoke(app, ["show", str(out), "--out", str(png), "--per-class", "3"])
    assert shown.exit_code == 0, shown.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_compat_flag_and_yaml_config(tmp_path):
    yaml_path = tmp_path / "cfg.yaml"
    yaml_path.write_text("instrument:\n  num_pix: 32\n")
    out = tmp_path / "c.h5"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--n-per-class",
            "2",
            "--deeplense-compat",
            "--config",
            str(yaml_path),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = LensDataset(out)
    assert ds.image_shape == (1, 32, 32) and ds.manifest["config"]["deeplense_compat"] is True
    assert np.all(ds.images() >= 0)  # compat Model II: noiseless


def test_bad_input_gives_a_message_and_exit_code_2(tmp_path):
    cases = [
        ["simulate", "--preset", "model_9", "--out", str(tmp_path / "x.h5")],
        ["simulate", "--split", "0.5,0.5", "--out", str(tmp_path / "x.h5")],
        ["simulate", "--set", "cdm.n_subhalos=lots", "--out", str(tmp_path / "x.h5")],
        ["info", str(tmp_path / "missing.h5")],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error" in result.output.lower()
        assert "Traceback" not in result.output


def test_presets_listing():
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0 and "model_iii" in result.output
    yaml_out = runner.invoke(app, ["presets", "model_i"])
    assert "num_pix: 150" in yaml_out.output
