"""Counter-based random streams: the same bits in NumPy and torch, per-image independence of the
block, and the distributions the simulators rely on (checked against SciPy)."""

import numpy as np
import pytest
import torch
from scipy import stats

from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    CounterRandom,
    counter_bits_numpy,
    counter_bits_torch,
    counter_keys,
    counter_normal,
    counter_poisson,
    counter_uniform,
    keys_tensor,
)


def keys(seed, indices, stream=NOISE_STREAM):
    return keys_tensor(counter_keys(seed, np.asarray(indices), stream), "cpu")


def test_numpy_and_torch_give_the_same_64_bit_values():
    k = counter_keys(2**40 + 3, np.array([0, 1, 7, 2**33]), PARAMS_STREAM)
    ours = counter_bits_torch(keys_tensor(k, "cpu"), 5, 9).numpy()
    np.testing.assert_array_equal(ours, counter_bits_numpy(k, 5, 9).view(np.int64))


def test_keys_differ_by_seed_index_and_stream():
    base = counter_keys(0, np.arange(1000), 0)
    assert len(np.unique(base)) == 1000
    assert not np.any(base == counter_keys(1, np.arange(1000), 0))
    assert not np.any(base == counter_keys(0, np.arange(1000), 1))


def test_an_images_draws_do_not_depend_on_its_block():
    whole = CounterRandom(4, np.arange(10), PARAMS_STREAM)
    alone = CounterRandom(4, [6], PARAMS_STREAM)
    for rng in (whole, alone):
        rng.uniform(-1, 1, size=2)
    np.testing.assert_array_equal(whole.normal(size=(3, 2))[6], alone.normal(size=(3, 2))[0])
    block = counter_normal(keys(4, range(10)), 50)
    np.testing.assert_array_equal(block[6], counter_normal(keys(4, [6]), 50)[0])


def test_uniforms_and_normals_have_their_distributions():
    u64 = CounterRandom(0, np.arange(20_000), 0).random()
    assert stats.kstest(u64, "uniform").pvalue > 1e-3
    u32 = counter_uniform(keys(1, range(200)), 100).numpy().ravel()
    assert stats.kstest(u32, "uniform").pvalue > 1e-3
    assert 0.0 < u32.min() and u32.max() < 1.0
    z = counter_normal(keys(2, range(200)), 101).numpy()
    assert z.shape == (200, 101)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    z64 = CounterRandom(3, np.arange(20_000), 0).normal(2.0, 3.0)
    assert stats.kstest(z64, "norm", args=(2.0, 3.0)).pvalue > 1e-3
    # neighbouring values of one stream are uncorrelated
    assert abs(np.corrcoef(z[:, 0], z[:, 1])[0, 1]) < 0.2
    assert abs(np.corrcoef(z.ravel()[:-1], z.ravel()[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("rate", [0.0, 0.2, 3.0, 9.5, 10.0, 47.0, 2500.0])
def test_poisson_counts_follow_the_poisson_distribution(rate):
    counts = counter_poisson(keys(5, range(100)), torch.full((100, 200), rate)).numpy().ravel()
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    if rate == 0:
        assert counts.max() == 0
        return
    # chi-square over the central bins (expected counts ≥ 20), the tails lumped
    low, high = stats.poisson.ppf([0.005, 0.995], rate).astype(int)
    edges = np.arange(low, high + 2)
    observed = np.histogram(counts, bins=np.r_[-np.inf, edges[1:-1] - 0.5, np.inf])[0]
    cdf = stats.poisson.cdf(edges[:-1], rate)
    expected = np.diff(np.r_[0.0, cdf[:-1], 1.0]) * counts.size
    keep = expected >= 20
    observed = np.r_[observed[keep], observed[~keep].sum()]
    expected = np.r_[expected[keep], expected[~keep].sum()]
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    chi2 = np.sum((observed - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, len(observed) - 1) > 1e-3


def test_poisson_counts_do_not_depend_on_the_other_elements():
    rates = torch.tensor([[0.5, 30.0, 800.0, 4.0]] * 3, dtype=torch.float64)
    mixed = counter_poisson(keys(8, range(3)), rates)
    alone = counter_poisson(keys(8, [1]), rates[1:2])
    np.testing.assert_array_equal(mixed[1], alone[0])
    # an element's count does not depend on how many rounds the others needed
    other_rates = rates[1:2].clone()
    other_rates[0, 2] = 5.0
    np.testing.assert_array_equal(counter_poisson(keys(8, [1]), other_rates)[0, :2], alone[0, :2])
