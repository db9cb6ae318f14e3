"""Regression and denoising metrics against scikit-learn and scikit-image."""

import numpy as np
import pytest
from skimage import metrics as skimetrics
from sklearn import metrics as skm

from darklens.evaluate import regression as reg


def _case(seed: int, n: int = 200, targets: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n, targets)) * [1.0, 5.0, 0.1][:targets]
    sigma = rng.uniform(0.2, 1.5, size=(n, targets)) * [1.0, 5.0, 0.1][:targets]
    pred = truth + rng.normal(size=(n, targets)) * sigma + 0.05
    return truth, pred, sigma


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mae_rmse_r2_match_scikit_learn(seed):
    truth, pred, _ = _case(seed)
    np.testing.assert_allclose(
        reg.mean_absolute_error(truth, pred),
        skm.mean_absolute_error(truth, pred, multioutput="raw_values"),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        reg.root_mean_squared_error(truth, pred),
        np.sqrt(skm.mean_squared_error(truth, pred, multioutput="raw_values")),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        reg.r2_score(truth, pred), skm.r2_score(truth, pred, multioutput="raw_values"), rtol=1e-10
    )


def test_bias_coverage_and_the_report():
    truth, pred, sigma = _case(3, n=20000, targets=2)
    np.testing.assert_allclose(reg.bias(truth, pred), (pred - truth).mean(axis=0))
    cover = reg.coverage(truth, pred, sigma, 1.0)
    np.testing.assert_allclose(cover, 0.6827, atol=0.015)  # the residuals really are N(0, σ²)
    report = reg.regression_metrics(truth, pred, sigma, ["a", "b"])
    assert report["n_samples"] == 20000 and set(report["targets"]) == {"a", "b"}
    assert report["targets"]["b"]["coverage_95"] == pytest.approx(0.95, abs=0.01)
    overconfident = reg.regression_metrics(truth, pred, sigma / 3)["targets"]["y0"]
    assert overconfident["coverage_68"] < 0.35
    constant = reg.r2_score(np.ones(5), np.arange(5.0))
    assert np.isnan(constant[0]) and reg.regression_metrics(np.ones(5), np.ones(5))[
        "targets"]["y0"]["r2"] is None  # fmt: skip


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones(3), np.ones(4)), "differ in shape"),
        ((np.array([1.0, np.nan]), np.ones(2)), "NaN"),
        ((np.ones((0, 2)), np.ones((0, 2))), "N >= 1"),
    ],
)
def test_bad_inputs_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        reg.regression_metrics(*args)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        reg.coverage(np.ones(2), np.ones(2), -np.ones(2), 1.0)


def test_psnr_and_ssim_are_scikit_images():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(4, 32, 32))
    noisy = clean + rng.normal(0, 0.1, size=clean.shape)
    assert reg.psnr(clean, noisy) == pytest.approx(
        skimetrics.peak_signal_noise_ratio(clean, noisy, data_range=np.ptp(clean))
    )
    expected = np.mean(
        [
            skimetrics.structural_similarity(c, n, data_range=np.ptp(clean))
            for c, n in zip(clean, noisy, strict=True)
        ]
    )
    assert reg.ssim(clean, noisy) == pytest.approx(expected)
    assert reg.ssim(clean, clean) == pytest.approx(1.0) and reg.psnr(clean, clean) == np.inf
