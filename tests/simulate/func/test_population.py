"""Population relations against independent references: scipy integrals and distributions,
astropy's cosmology, lenstronomy's lensing conversions and the published forms."""

import math

import numpy as np
import pytest
from astropy.cosmology import FlatLambdaCDM
from lenstronomy.Cosmo.lens_cosmo import LensCosmo
from scipy import integrate, stats

from darklens.simulate.func.cosmology import sis_einstein_radius_arcsec, sis_velocity_dispersion_kms
from darklens.simulate.func.population import (
    CHOI_PHI_STAR_H3_MPC3,
    InverseCdf,
    choi_vdf_per_mpc3_kms,
    comoving_volume_cdf,
    comoving_volume_mpc3,
    hyde_bernardi_absolute_magnitude_r,
    schechter_magnitude_cdf,
    shen_late_type_radius,
    source_counts_per_arcsec2,
    source_magnitude,
    source_redshift,
    source_redshift_mixture,
    source_redshift_scale,
    velocity_dispersion_cdf,
)

H0, OMEGA_M = 70.0, 0.3
DN_DM = 0.31 * math.log(10.0)  # dN/dm = 0.31 ln 10 · N for N ∝ 10^(0.31 m)


def test_choi_function_integrates_to_its_normalisation():
    """The modified Schechter form integrates to φ* over all σ (Choi et al. 2007 eq. 4)."""
    total, _ = integrate.quad(lambda s: choi_vdf_per_mpc3_kms(s, 0.7), 1e-3, 2000, limit=200)
    assert total == pytest.approx(CHOI_PHI_STAR_H3_MPC3 * 0.7**3, rel=1e-4)


@pytest.mark.parametrize("power", [0.0, 4.0])
def test_velocity_dispersion_draws_follow_the_weighted_function(power):
    table = velocity_dispersion_cdf(100.0, 400.0, power, 0.7)
    weight = lambda s: choi_vdf_per_mpc3_kms(s, 0.7) * s**power  # noqa: E731
    norm, _ = integrate.quad(weight, 100, 400)
    mean, _ = integrate.quad(lambda s: s * weight(s), 100, 400)
    assert table.mean() == pytest.approx(mean / norm, rel=1e-4)
    below_250, _ = integrate.quad(weight, 100, 250)
    assert float(np.interp(250.0, table.values, table.cdf)) == pytest.approx(below_250 / norm, 1e-4)


def test_redshifts_are_uniform_in_comoving_volume():
    cosmo = FlatLambdaCDM(H0=H0, Om0=OMEGA_M)
    table = comoving_volume_cdf(0.05, 2.0, H0, OMEGA_M)
    dv = lambda z: cosmo.differential_comoving_volume(z).value  # noqa: E731
    total, _ = integrate.quad(dv, 0.05, 2.0)
    part, _ = integrate.quad(dv, 0.05, 0.7)
    assert float(table(part / total)) == pytest.approx(0.7, abs=2e-3)
    assert comoving_volume_mpc3(2.0, H0, OMEGA_M) == pytest.approx(
        cosmo.comoving_volume(2.0).value, rel=1e-4
    )


def test_inverse_cdf_rejects_an_empty_density():
    with pytest.raises(ValueError, match="integrates to zero"):
        InverseCdf.from_density(np.linspace(0, 1, 5), np.zeros(5))


def test_source_counts_follow_the_lsst_science_book():
    """N(< i) = 46 · 10^(0.31 (i − 25)) per arcmin² (eq. 3.7); magnitudes drawn from dN/dm."""
    assert source_counts_per_arcsec2(25.0) == pytest.approx(46.0 / 3600.0)
    assert source_counts_per_arcsec2(27.0, 25.0) == pytest.approx(
        46.0 / 3600.0 * (10 ** (0.31 * 2) - 1)
    )
    u = np.linspace(0.0, 1.0, 101)
    m = source_magnitude(u, (20.0, 28.0))
    counts = lambda a, b: source_counts_per_arcsec2(b, a)  # noqa: E731
    expected = np.array([counts(20.0, mi) for mi in m]) / counts(20.0, 28.0)
    np.testing.assert_allclose(expected, u, atol=1e-12)


def test_source_redshifts_add_up_to_the_science_books_magnitude_limited_distribution():
    """Galaxies brighter than i have p(z) ∝ z² exp(−z/z0(i)), z0 = 0.0417 i − 0.744 (LSST
    Science Book eq. 3.8). Our per-magnitude distribution p(z | m), summed over the counts
    dN/dm between two magnitudes, must equal the difference of the book's distributions
    N(< b) p(z | < b) − N(< a) p(z | < a) (checked with scipy's gamma)."""
    low, high, z_max = 22.0, 25.5, 8.0
    magnitudes = np.linspace(low, high, 701)
    z_grid = np.linspace(0.05, 5.0, 60)
    summed = np.zeros_like(z_grid)
    for m in magnitudes:
        z0, w4 = source_redshift_mixture(m)
        density = (1 - w4) * stats.gamma(3, scale=z0).pdf(z_grid)
        density += w4 * stats.gamma(4, scale=z0).pdf(z_grid)
        summed += DN_DM * 10 ** (0.31 * m) * density
    summed = (summed - 0.5 * _ends(magnitudes, z_grid)) * (magnitudes[1] - magnitudes[0])
    book = [10 ** (0.31 * m) * stats.gamma(3, scale=0.0417 * m - 0.744).pdf(z_grid)
            for m in (low, high)]  # fmt: skip
    np.testing.assert_allclose(summed, book[1] - book[0], rtol=2e-3, atol=1e-4 * book[1].max())
    # draws: the mixture's inverse CDF, truncated at z_max
    for magnitude in (23.0, 27.5):
        z0, w4 = source_redshift_mixture(magnitude)
        for component, shape in ((0.0, 4), (0.999, 3)):
            u = 0.37
            z = source_redshift(component if w4 > 0 else 0.999, u, magnitude, z_max)
            ref = stats.gamma(shape, scale=z0)
            assert ref.cdf(z) / ref.cdf(z_max) == pytest.approx(u, abs=1e-9)
    assert source_redshift_scale(30.0) == pytest.approx(0.0417 * 27 - 0.744)


def _ends(magnitudes: np.ndarray, z_grid: np.ndarray) -> np.ndarray:
    """The trapezoid rule's end corrections: dN/dm p(z | m) at the first and last magnitude."""
    total = np.zeros_like(z_grid)
    for m in (magnitudes[0], magnitudes[-1]):
        z0, w4 = source_redshift_mixture(m)
        density = (1 - w4) * stats.gamma(3, scale=z0).pdf(z_grid)
        total += DN_DM * 10 ** (0.31 * m) * (density + w4 * stats.gamma(4, scale=z0).pdf(z_grid))
    return total


def test_hyde_bernardi_inversion_recovers_the_published_relation():
    """⟨log σ | M_r⟩ = −2.97 − 0.37 M_r − 0.006 M_r² (the form LensPop inverts)."""
    for sigma in (120.0, 200.0, 280.0, 380.0):
        m = float(hyde_bernardi_absolute_magnitude_r(sigma))
        assert -2.97 - 0.37 * m - 0.006 * m**2 == pytest.approx(math.log10(sigma), abs=1e-12)


def test_schechter_magnitudes_follow_blanton_et_al():
    h = 0.7
    m_star = -20.44 + 5 * math.log10(h)

    def density(m: float) -> float:
        x = 10 ** (-0.4 * (m - m_star))
        return x ** (-1.05 + 1) * math.exp(-x)

    table = schechter_magnitude_cdf(-23.5, -20.0, h)
    total, _ = integrate.quad(density, -23.5, -20.0)
    part, _ = integrate.quad(density, -23.5, -21.5)
    assert float(table(part / total)) == pytest.approx(-21.5, abs=2e-3)


def test_shen_late_type_sizes_have_the_published_slopes():
    """R50 ∝ L^α at the faint end and L^β at the bright end (α = 0.21, β = 0.53), with a
    scatter falling from 0.48 to 0.25 in ln R (Shen et al. 2003 eqs. 16, 18)."""

    def slope(m: float) -> float:
        r1, _ = shen_late_type_radius(m)
        r2, _ = shen_late_type_radius(m - 0.1)
        return math.log10(r2 / r1) / 0.04  # d log R / d log L, log L = −0.4 M

    assert slope(-14.0) == pytest.approx(0.21, abs=0.01)
    assert slope(-25.0) == pytest.approx(0.53, abs=0.01)
    assert shen_late_type_radius(-14.0)[1] == pytest.approx(0.48, abs=0.01)
    assert shen_late_type_radius(-25.0)[1] == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("sigma, z_lens, z_source", [(150.0, 0.3, 1.0), (280.0, 0.7, 2.5)])
def test_sis_einstein_radius_matches_lenstronomy(sigma, z_lens, z_source):
    cosmo = FlatLambdaCDM(H0=H0, Om0=OMEGA_M)
    reference = LensCosmo(z_lens, z_source, cosmo=cosmo).sis_sigma_v2theta_E(sigma)
    theta_e = sis_einstein_radius_arcsec(sigma, z_lens, z_source, H0, OMEGA_M)
    assert theta_e == pytest.approx(reference, rel=1e-4)
    assert sis_velocity_dispersion_kms(theta_e, z_lens, z_source, H0, OMEGA_M) == pytest.approx(
        sigma, rel=1e-9
    )
    assert sis_einstein_radius_arcsec(sigma, z_source, z_lens, H0, OMEGA_M) == 0.0
