"""Evaluating and predicting with regression and denoising checkpoints."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.evaluate.run import evaluate_checkpoint
from darklens.predict import Denoiser, Predictor, Regressor
from darklens.predict.batch import predict_files

runner = CliRunner()


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_regression_evaluation_matches_sklearn_and_draws_its_figures(
    regression_run, regression_h5, tmp_path
):
    metrics = evaluate_checkpoint(regression_run, regression_h5, tmp_path / "report")
    rows = _read_csv(tmp_path / "report" / "predictions.csv")
    true = np.array([float(r["true_ring_radius_px"]) for r in rows])
    pred = np.array([float(r["ring_radius_px"]) for r in rows])
    sigma = np.array([float(r["ring_radius_px_sigma"]) for r in rows])
    with LensDataset(regression_h5) as data:
        test_rows = data.split_indices("test")
        np.testing.assert_allclose(true, data.truth("ring_radius_px")[test_rows])
    scores = metrics["targets"]["ring_radius_px"]
    assert scores["mae"] == pytest.approx(mean_absolute_error(true, pred))
    assert scores["rmse"] == pytest.approx(np.sqrt(mean_squared_error(true, pred)))
    assert scores["r2"] == pytest.approx(r2_score(true, pred))
    assert scores["bias"] == pytest.approx(np.mean(pred - true))
    assert scores["coverage_68"] == pytest.approx(np.mean(np.abs(pred - true) <= sigma))
    assert metrics["n_samples"] == len(rows) == len(test_rows) and metrics["n_masked"] == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64") == 3  # predicted-vs-true, residuals, history
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert saved["targets"]["ring_radius_px"]["mae"] == pytest.approx(scores["mae"])
    regressor = Regressor.from_checkpoint(regression_run)
    with LensDataset(regression_h5) as data:
        direct, direct_sigma = regressor.predict(data.images(test_rows))
    np.testing.assert_allclose(direct[:, 0], pred, rtol=1e-6)
    np.testing.assert_allclose(direct_sigma[:, 0], sigma, rtol=1e-6)


def test_predict_writes_one_column_per_target_and_its_sigma(
    regression_run, regression_h5, tmp_path
):
    n = predict_files(regression_run, regression_h5, tmp_path / "p.csv", split="val")
    rows = _read_csv(tmp_path / "p.csv")
    assert n == len(rows) and list(rows[0]) == ["id", "ring_radius_px", "ring_radius_px_sigma"]
    assert all(float(r["ring_radius_px_sigma"]) > 0 for r in rows)
    result = runner.invoke(
        app,
        ["predict", "-c", str(regression_run), str(regression_h5), "--split", "val",
         "--out", str(tmp_path / "cli.parquet"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "cli.parquet")
    assert table.column_names == ["id", "ring_radius_px", "ring_radius_px_sigma"]
    np.testing.assert_allclose(
        table.column("ring_radius_px").to_numpy(), [float(r["ring_radius_px"]) for r in rows]
    )


def test_classifier_readers_refuse_other_tasks(regression_run, denoise_run):
    with pytest.raises(ValueError, match="'regress' model.*Regressor"):
        Predictor.from_checkpoint(regression_run)
    with pytest.raises(ValueError, match="'denoise' model.*Denoiser"):
        Regressor.from_checkpoint(denoise_run)
    with pytest.raises(TypeError, match="use predict"):
        Regressor.from_checkpoint(regression_run).predict_proba(np.zeros((1, 1, 24, 24)))


def test_denoising_evaluation_scores_with_skimage(denoise_run, regression_h5, tmp_path):
    metrics = evaluate_checkpoint(denoise_run, regression_h5, tmp_path / "report")
    with LensDataset(regression_h5) as data:
        rows = data.split_indices("test")
        noisy, clean = data.images(rows), data.clean_images(rows)
    denoised = Denoiser.from_checkpoint(denoise_run).denoise(noisy)
    assert denoised.shape == noisy.shape
    span = [float(c.max() - c.min()) for c in clean]
    pairs = zip(clean, denoised, span, strict=True)
    expected_psnr = np.mean([peak_signal_noise_ratio(c, d, data_range=s) for c, d, s in pairs])
    noisy_ssim = np.mean(
        [
            structural_similarity(c[0], n[0], data_range=s)
            for c, n, s in zip(clean.astype(float), noisy.astype(float), span, strict=True)
        ]
    )
    assert metrics["psnr_db"] == pytest.approx(expected_psnr, rel=1e-4)
    assert metrics["ssim_noisy"] == pytest.approx(noisy_ssim, rel=1e-4)
    assert metrics["noise_std"] == pytest.approx(np.sqrt(np.mean((noisy - clean) ** 2)), rel=1e-5)
    assert metrics["residual_to_noise"] < 1.0  # the U-Net removes some of the noise
    assert (tmp_path / "report" / "denoising_examples.png").is_file()
    result = runner.invoke(
        app,
        ["evaluate", "-c", str(denoise_run), "--data", str(regression_h5),
         "--out", str(tmp_path / "cli"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "psnr_db" in result.output


def test_residuals_are_drawn_against_the_other_finite_scalar_truth(regression_h5):
    from darklens.evaluate.tasks import _other_truth

    with LensDataset(regression_h5) as data:
        rows = data.split_indices("test")
        others = _other_truth(data, rows, ["ring_radius_px"])
        assert list(others) == ["amplitude"]  # axion mass has NaN, subhalo masses are per slot
        np.testing.assert_array_equal(others["amplitude"], data.truth("amplitude")[rows])
        axion_rows = rows[np.isfinite(data.truth("axion_mass_ev")[rows])]
        assert "axion_mass_ev" not in _other_truth(data, axion_rows, ["log10_axion_mass"])
        assert "axion_mass_ev" in _other_truth(data, axion_rows, ["ring_radius_px"])
