"""Regression targets: names resolved against truth columns, scaling, the Gaussian-NLL loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from darklens.train.targets import (
    RegressionLoss,
    TargetScaling,
    fit_scaling,
    regression_epoch_metrics,
    resolve_truth_column,
    target_table,
    target_values,
)


class FakeTruth:
    """Truth columns as a dataset exposes them."""

    def __init__(self, **columns: np.ndarray) -> None:
        self.columns = columns
        self.truth_columns = sorted(columns)

    def truth(self, name: str) -> np.ndarray:
        return self.columns[name]


TRUTH = FakeTruth(
    axion_mass_ev=np.array([1e-23, np.nan, 1e-22]),
    theta_e_arcsec=np.array([1.0, 1.5, 2.0]),
    subhalo_mass_msun=np.array([[1e9, 3e9], [np.nan, np.nan], [2e9, np.nan]]),
)


def test_names_resolve_to_columns_with_or_without_their_unit():
    assert resolve_truth_column("theta_e_arcsec", TRUTH.truth_columns) == "theta_e_arcsec"
    assert resolve_truth_column("axion_mass", TRUTH.truth_columns) == "axion_mass_ev"
    np.testing.assert_allclose(target_values(TRUTH, "log10_axion_mass"), [-23, np.nan, -22])
    np.testing.assert_allclose(target_values(TRUTH, "total_subhalo_mass_msun"), [4e9, np.nan, 2e9])
    np.testing.assert_allclose(
        target_values(TRUTH, "log10_total_subhalo_mass"), np.log10([4e9, np.nan, 2e9])
    )
    assert target_table(TRUTH, ["theta_e", "log10_axion_mass"]).shape == (3, 2)


def test_unknown_target_lists_the_truth_columns():
    with pytest.raises(KeyError, match="axion_mass_ev, subhalo_mass_msun, theta_e_arcsec"):
        target_values(TRUTH, "einstein_radius")


def test_vector_column_needs_total_and_log_of_nonpositive_is_nan():
    with pytest.raises(ValueError, match="total_subhalo_mass_msun"):
        target_values(TRUTH, "subhalo_mass_msun")
    zeros = FakeTruth(mass=np.array([0.0, -1.0, 10.0]))
    np.testing.assert_allclose(target_values(zeros, "log10_mass"), [np.nan, np.nan, 1.0])


def test_scaling_round_trips_and_maps_outputs_back():
    values = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    scaling = fit_scaling(values, ["a", "b"], standardize=True, loss="gaussian_nll")
    scaled = scaling.scale(values)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.std(axis=0), 1)
    assert TargetScaling.from_dict(scaling.to_dict()) == scaling
    log_var = np.full_like(scaled, 10 * np.arctanh(np.log(0.25) / 10))  # σ = 0.5 (scaled)
    mean, sigma = scaling.to_physical(np.concatenate([scaled, log_var], axis=1))
    np.testing.assert_allclose(mean, values)
    np.testing.assert_allclose(sigma, 0.5 * values.std(axis=0)[None].repeat(3, 0))
    plain = fit_scaling(values, ["a", "b"], standardize=False, loss="mse")
    assert plain.n_outputs == 2 and plain.to_physical(values)[1] is None
    np.testing.assert_allclose(plain.to_physical(values)[0], values)


def test_gaussian_nll_matches_scipy_up_to_its_constant():
    rng = np.random.default_rng(0)
    mean, log_var, target = rng.normal(size=(3, 16, 2))
    raw = 10 * np.arctanh(log_var / 10)  # the head's raw output giving this log-variance
    outputs = torch.tensor(np.concatenate([mean, raw], axis=1))
    loss = RegressionLoss("gaussian_nll", 2)(outputs, torch.tensor(target))
    expected = -norm.logpdf(target, mean, np.exp(0.5 * log_var)).mean() - 0.5 * np.log(2 * np.pi)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    mse = RegressionLoss("mse", 2)(torch.tensor(mean), torch.tensor(target))
    assert float(mse) == pytest.approx(np.mean((mean - target) ** 2), rel=1e-5)


def test_epoch_metrics_are_in_physical_units():
    scaling = TargetScaling(("a",), (10.0,), (2.0,), "mse")
    true = torch.tensor([[-1.0], [0.0], [1.0], [2.0]])
    pred = true + torch.tensor([[0.5], [-0.5], [0.5], [-0.5]])
    metrics = regression_epoch_metrics(pred, true, scaling)
    assert metrics["rmse"] == pytest.approx(1.0) and metrics["mae"] == pytest.approx(1.0)
    assert metrics["loss"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="diverged"):
        regression_epoch_metrics(pred * float("nan"), true, scaling)
