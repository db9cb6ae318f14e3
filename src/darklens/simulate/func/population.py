"""Galaxy-population relations for lens-finding simulations (pure NumPy; units in the names).

Deflectors follow Collett (2015, ApJ 811, 20) and his LensPop code: the velocity-dispersion
function of Choi, Park & Vogeley (2007, ApJ 658, 884) over the comoving volume, light and size
from Hyde & Bernardi (2009, MNRAS 394, 1978), flattening from LensPop. Sources follow galaxy
number counts and the redshift distribution of the LSST Science Book (2009, arXiv:0912.0201,
Sect. 3.7.2, eqs. 3.7–3.8) and LensPop's size–magnitude relation. Disc galaxies (look-alikes)
follow the r-band luminosity function of Blanton et al. (2003, ApJ 592, 819) and the late-type
size–luminosity relation of Shen et al. (2003, MNRAS 343, 978) with the size evolution of van
der Wel et al. (2014, ApJ 788, 28).

Draws use inverse cumulative tables (:class:`InverseCdf`) so that one uniform number gives one
value: a per-image generator stays reproducible whatever else is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import gammainc, gammaincinv

from darklens.simulate.func.cosmology import comoving_distances_mpc

# Choi, Park & Vogeley (2007), their modified Schechter fit to SDSS early types (h = H0/100).
CHOI_PHI_STAR_H3_MPC3 = 8.0e-3
CHOI_SIGMA_STAR_KMS = 161.0
CHOI_ALPHA = 2.32
CHOI_BETA = 2.67
# LSST Science Book eq. 3.7: N(< i) = 46 · 10^(0.31 (i − 25)) galaxies per arcmin².
COUNTS_AT_25_PER_ARCMIN2 = 46.0
COUNTS_SLOPE_PER_MAG = 0.31
# Its eq. 3.8: galaxies brighter than i have p(z) ∝ z² exp(−z / z0), z0 = 0.0417 i − 0.744.
Z0_SLOPE, Z0_OFFSET = 0.0417, -0.744
# Magnitudes at which z0 is evaluated (below 22 the per-magnitude form would turn negative).
Z0_MAGNITUDE_RANGE = (22.0, 27.0)
# Rest-frame r absolute magnitude of a source minus the one a flat f_ν spectrum gives from its
# observed i magnitude (M_r − [i − DM + 2.5 log10(1 + z)]): medians per redshift of the LSST
# simulated catalogue (Connolly et al. 2010) that LensPop draws its sources and their M_r from.
SOURCE_REST_R_REDSHIFTS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
SOURCE_REST_R_OFFSETS = (-0.3, -0.41, -0.71, -0.98, -1.48, -1.8, -1.87, -2.02, -1.91, -1.63)
# Blanton et al. (2003) ^{0.1}r-band luminosity function: M* − 5 log10 h = −20.44, α = −1.05.
BLANTON_M_STAR_5LOGH = -20.44
BLANTON_ALPHA = -1.05
# Shen et al. (2003) eq. 18 and Table 1 (r band, late types): R50 in kpc (h = 0.7).
SHEN_LATE = {"alpha": 0.21, "beta": 0.53, "gamma": -1.31, "m0": -20.52, "s1": 0.48, "s2": 0.25}
# van der Wel et al. (2014): late-type sizes at fixed mass grow as (1 + z)^−0.75.
LATE_SIZE_EVOLUTION = -0.75
_TABLE_POINTS = 2049


@dataclass(frozen=True)
class InverseCdf:
    """A tabulated distribution: ``values`` at increasing cumulative probabilities ``cdf``."""

    values: np.ndarray
    cdf: np.ndarray

    @classmethod
    def from_density(cls, grid: np.ndarray, density: np.ndarray) -> InverseCdf:
        """From an unnormalised density on an increasing grid (trapezoid rule)."""
        steps = 0.5 * (density[1:] + density[:-1]) * np.diff(grid)
        cdf = np.concatenate([[0.0], np.cumsum(steps)])
        if not cdf[-1] > 0:
            raise ValueError("the density integrates to zero over its grid")
        return cls(np.asarray(grid, dtype=np.float64), cdf / cdf[-1])

    def __call__(self, u: float | np.ndarray) -> np.ndarray:
        """The value at cumulative probability ``u`` ∈ [0, 1] (linear interpolation)."""
        return np.interp(u, self.cdf, self.values)

    def mean(self) -> float:
        mid = 0.5 * (self.values[1:] + self.values[:-1])
        return float(np.sum(mid * np.diff(self.cdf)))


# -- deflectors ----------------------------------------------------------------------------------
def choi_vdf_per_mpc3_kms(sigma_kms: np.ndarray, h: float) -> np.ndarray:
    """φ(σ) (per Mpc³ per km/s): φ* (σ/σ*)^α exp[−(σ/σ*)^β] β / Γ(α/β) / σ (Choi et al. 2007)."""
    x = np.asarray(sigma_kms, dtype=np.float64) / CHOI_SIGMA_STAR_KMS
    phi_star = CHOI_PHI_STAR_H3_MPC3 * h**3
    shape = CHOI_BETA / math.gamma(CHOI_ALPHA / CHOI_BETA)
    return phi_star * x**CHOI_ALPHA * np.exp(-(x**CHOI_BETA)) * shape / np.asarray(sigma_kms)


@lru_cache(maxsize=16)
def velocity_dispersion_cdf(
    sigma_min_kms: float, sigma_max_kms: float, weight_power: float, h: float
) -> InverseCdf:
    """σ drawn from φ(σ) σ^``weight_power`` on [min, max]: power 0 is every galaxy, 4 weights by
    the SIS lensing cross-section (θ_E² ∝ σ⁴)."""
    grid = np.linspace(sigma_min_kms, sigma_max_kms, _TABLE_POINTS)
    return InverseCdf.from_density(grid, choi_vdf_per_mpc3_kms(grid, h) * grid**weight_power)


@lru_cache(maxsize=16)
def comoving_volume_cdf(z_min: float, z_max: float, h0: float, omega_m: float) -> InverseCdf:
    """Redshift drawn uniformly in comoving volume: dV/dz ∝ D_C² / E(z) (flat ΛCDM)."""
    grid = np.linspace(z_min, z_max, _TABLE_POINTS)
    d_c = comoving_distances_mpc(grid, h0, omega_m)
    e_z = np.sqrt(omega_m * (1.0 + grid) ** 3 + 1.0 - omega_m)
    return InverseCdf.from_density(grid, d_c**2 / e_z)


def comoving_volume_mpc3(z_max: float, h0: float, omega_m: float) -> float:
    """Comoving volume of the whole sky out to ``z_max`` (flat: 4π D_C³ / 3)."""
    d_c = float(comoving_distances_mpc(z_max, h0, omega_m))
    return 4.0 * math.pi * d_c**3 / 3.0


def hyde_bernardi_absolute_magnitude_r(sigma_kms: np.ndarray | float) -> np.ndarray:
    """Rest-frame SDSS r absolute magnitude of an early type of velocity dispersion σ: LensPop's
    inversion of Hyde & Bernardi's ⟨log σ | M_r⟩ = −2.97 − 0.37 M_r − 0.006 M_r² (σ < 540 km/s)."""
    v = np.log10(np.asarray(sigma_kms, dtype=np.float64))
    return (-0.37 + np.sqrt(0.37**2 - 4.0 * 0.006 * (2.97 + v))) / (2.0 * 0.006)


def hyde_bernardi_log10_radius_kpc(sigma_kms: np.ndarray | float) -> np.ndarray:
    """log10 of the half-light radius (kpc) of an early type at σ: 2.46 − 2.79 V + 0.84 V²,
    V = log10 σ (Hyde & Bernardi 2009 as used by LensPop; scatter 0.11 dex there)."""
    v = np.log10(np.asarray(sigma_kms, dtype=np.float64))
    return 2.46 - 2.79 * v + 0.84 * v**2


def lenspop_flattening_scale(sigma_kms: np.ndarray | float) -> np.ndarray:
    """Rayleigh scale of the ellipticity e = 1 − q of a deflector: 0.378 − 0.000572 σ (LensPop)."""
    return 0.378 - 0.000572 * np.asarray(sigma_kms, dtype=np.float64)


# -- background sources ----------------------------------------------------------------------------
def source_counts_per_arcsec2(magnitude_max: float, magnitude_min: float = -np.inf) -> float:
    """Galaxies per arcsec² with ``magnitude_min`` < m < ``magnitude_max`` (LSST Science Book)."""

    def cumulative(m: float) -> float:
        if m == -np.inf:
            return 0.0
        return COUNTS_AT_25_PER_ARCMIN2 * 10.0 ** (COUNTS_SLOPE_PER_MAG * (m - 25.0)) / 3600.0

    return cumulative(magnitude_max) - cumulative(magnitude_min)


def source_magnitude(u: float | np.ndarray, magnitude_range: tuple[float, float]) -> np.ndarray:
    """Apparent magnitude from the counts dN/dm ∝ 10^(0.31 m) within ``magnitude_range``."""
    low, high = magnitude_range
    floor = 10.0 ** (-COUNTS_SLOPE_PER_MAG * (high - low))
    return high + np.log10(floor + np.asarray(u) * (1.0 - floor)) / COUNTS_SLOPE_PER_MAG


def source_redshift_scale(magnitude: float | np.ndarray) -> np.ndarray:
    """z0 of the redshift distribution of galaxies brighter than ``magnitude`` (clipped to
    :data:`Z0_MAGNITUDE_RANGE`)."""
    return Z0_SLOPE * np.clip(magnitude, *Z0_MAGNITUDE_RANGE) + Z0_OFFSET


def source_redshift_mixture(magnitude: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z0, w) of the redshift distribution of galaxies *at* magnitude m.

    Differentiating N(< m) p(z | < m) in m, with N ∝ 10^(0.31 m) and p(z | < m) the Gamma(3, z0)
    of eq. 3.8, gives p(z | m) = (1 − w) Gamma(3, z0) + w Gamma(4, z0), w = 3 c / z0,
    c = (dz0/dm) / (0.31 ln 10): mean 3 z0 + 3 c, i.e. 1.07 at i = 25 (0.90 for i < 25).
    """
    z0 = source_redshift_scale(magnitude)
    c = Z0_SLOPE / (COUNTS_SLOPE_PER_MAG * math.log(10.0))
    return z0, np.minimum(3.0 * c / z0, 1.0)


def source_redshift(
    u_mixture: float | np.ndarray,
    u: float | np.ndarray,
    magnitude: float | np.ndarray,
    z_max: float,
) -> np.ndarray:
    """Redshift of a source of magnitude m (:func:`source_redshift_mixture`) below ``z_max``:
    ``u_mixture`` picks the Gamma component, ``u`` its truncated inverse CDF."""
    z0, weight = source_redshift_mixture(magnitude)
    shape = np.where(np.asarray(u_mixture) < weight, 4.0, 3.0)
    return z0 * gammaincinv(shape, np.asarray(u) * gammainc(shape, z_max / z0))


def source_absolute_magnitude_r(magnitude: float, z: float, distance_modulus: float) -> float:
    """Rest-frame r absolute magnitude of a star-forming source of observed (i-like) magnitude:
    a flat-f_ν K-correction (−2.5 log10(1 + z), Hogg et al. 2002) plus the median rest-r offset
    of LensPop's source catalogue (:data:`SOURCE_REST_R_OFFSETS`)."""
    flat = magnitude - distance_modulus + 2.5 * math.log10(1.0 + z)
    return flat + float(np.interp(z, SOURCE_REST_R_REDSHIFTS, SOURCE_REST_R_OFFSETS))


def lenspop_source_radius_kpc(absolute_magnitude: float, z: float) -> float:
    """Half-light radius (kpc) of a star-forming source of rest-frame absolute magnitude M:
    10^(−(M + 18)/4) ((1 + z)/1.6)^−1.2 (LensPop, after Mosleh et al. 2012 and Huang et al.
    2013; 0.35 dex scatter there)."""
    return 10.0 ** (-(absolute_magnitude + 18.0) / 4.0) * ((1.0 + z) / 1.6) ** -1.2


# -- disc galaxies (look-alikes) -----------------------------------------------------------------
@lru_cache(maxsize=16)
def schechter_magnitude_cdf(m_bright: float, m_faint: float, h: float) -> InverseCdf:
    """Absolute r magnitudes from Blanton et al.'s Schechter function between the limits."""
    m_star = BLANTON_M_STAR_5LOGH + 5.0 * math.log10(h)
    grid = np.linspace(m_bright, m_faint, _TABLE_POINTS)
    x = 10.0 ** (-0.4 * (grid - m_star))
    return InverseCdf.from_density(grid, x ** (BLANTON_ALPHA + 1.0) * np.exp(-x))


def shen_late_type_radius(absolute_magnitude_r: float) -> tuple[float, float]:
    """(median R50 in kpc, scatter σ_lnR) of a late type of absolute r magnitude (Shen et al.
    2003 eqs. 16 and 18)."""
    p = SHEN_LATE
    m = absolute_magnitude_r
    bright = 1.0 + 10.0 ** (-0.4 * (m - p["m0"]))
    log_r = -0.4 * p["alpha"] * m + (p["beta"] - p["alpha"]) * math.log10(bright) + p["gamma"]
    scatter = p["s2"] + (p["s1"] - p["s2"]) / (1.0 + 10.0 ** (-0.8 * (m - p["m0"])))
    return 10.0**log_r, scatter
