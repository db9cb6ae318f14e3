"""What one image is made of: light components, the deflector, and the simple galaxy population
the lensed-transient simulator draws from.

Positions are arcsec from the field centre, position angles radians, magnitudes AB per band
(``np.inf`` for an empty slot). Components with several parts (clumps, arcs, stars) hold fixed
numbers of slots so that images with the same components render in one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darklens.simulate.func.cosmology import distance_modulus, kpc_per_arcsec

# The largest SIE axis ratio drawn: caustics' SIE formula loses precision as q → 1 in float32.
MAX_MASS_AXIS_RATIO = 0.98
MIN_MASS_AXIS_RATIO = 0.2


@dataclass
class SersicLight:
    """Elliptical Sérsic: R_sersic in lenstronomy's convention (product-average radius)."""

    x: float
    y: float
    r_sersic: float
    n: float
    q: float
    phi: float
    magnitudes: np.ndarray


@dataclass
class SpiralArms:
    """Logarithmic spiral arms of a disc, carrying ``magnitudes`` of light in the pattern
    ((1 + cos Θ)/2)² / (3/8) × the disc profile, Θ = m(φ − phase) − (m / tan pitch) ln(r / R)
    in the disc's deprojected coordinates."""

    n_arms: int
    pitch_rad: float
    phase_rad: float
    magnitudes: np.ndarray


@dataclass
class RingLight:
    """Gaussian annulus in elliptical radius e (major axis): I ∝ exp(−(e − radius)² / 2 width²)."""

    x: float
    y: float
    radius: float
    width: float
    q: float
    phi: float
    magnitudes: np.ndarray


@dataclass
class Clumps:
    """Circular Gaussian clumps [K slots] sharing one colour: σ (arcsec) and the share of the
    component's flux ``magnitudes`` each carries (weights sum to 1; 0 in empty slots)."""

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    weight: np.ndarray
    magnitudes: np.ndarray


@dataclass
class Arcs:
    """Thin arcs [K slots] sharing one colour: Gaussian annuli of ``radius`` and ``width`` about
    (x, y) (axis ratio q, angle phi) windowed by a Gaussian of σ ``extent`` (rad) in the
    deprojected angle around ``angle``; ``weight`` as for :class:`Clumps`."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    width: np.ndarray
    q: np.ndarray
    phi: np.ndarray
    angle: np.ndarray
    extent: np.ndarray
    weight: np.ndarray
    magnitudes: np.ndarray


@dataclass
class Deflector:
    """SIE (lenstronomy θ_E, axis ratio, angle) plus external shear about the same centre."""

    x: float
    y: float
    theta_e: float
    q: float
    phi: float
    gamma1: float
    gamma2: float


@dataclass
class Stars:
    x: np.ndarray  # [K]
    y: np.ndarray
    magnitudes: np.ndarray  # [K, n_bands]; inf where the slot is empty


def combine_magnitudes(parts: list[np.ndarray]) -> np.ndarray:
    flux = sum(10.0 ** (-0.4 * np.asarray(m)) for m in parts)
    return -2.5 * np.log10(flux)


def split_magnitudes(magnitudes: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The magnitudes of the ``fraction`` and of the rest of a light of ``magnitudes``."""
    return magnitudes - 2.5 * math.log10(fraction), magnitudes - 2.5 * math.log10(1 - fraction)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def colours(table: tuple[tuple[float, float], ...], rng: np.random.Generator) -> np.ndarray:
    """m_band − m_ref for one object at a random position t ~ U(0, 1) along the sequence."""
    ends = np.asarray(table, dtype=np.float64)
    return ends[:, 0] + rng.uniform() * (ends[:, 1] - ends[:, 0])


def around(x: float, y: float, radius: float, rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return x + radius * math.cos(angle), y + radius * math.sin(angle)


def deflector_mass(config, galaxy: SersicLight, theta_e: float, rng: np.random.Generator):
    """The SIE + shear of a lens galaxy: centred on its light, axis ratio and angle scattered
    about the light's (``config.deflector``), shear uniform in [0, shear_max] at a random angle."""
    d = config.deflector
    q = galaxy.q + rng.normal(0.0, d.mass_axis_ratio_scatter)
    q = float(np.clip(q, MIN_MASS_AXIS_RATIO, MAX_MASS_AXIS_RATIO))
    phi = galaxy.phi + math.radians(rng.normal(0.0, d.mass_angle_scatter_deg))
    shear = rng.uniform(0.0, d.shear_max)
    shear_angle = rng.uniform(0.0, np.pi)
    gamma1 = shear * math.cos(2.0 * shear_angle)
    gamma2 = shear * math.sin(2.0 * shear_angle)
    return Deflector(galaxy.x, galaxy.y, theta_e, q, phi, gamma1, gamma2)


# -- the simple population of the lensed-transient simulator ---------------------------------------
def elliptical_light(
    config, z: float, sigma_kms: float, x: float, y: float, rng: np.random.Generator
) -> SersicLight:
    """An early-type galaxy of velocity dispersion σ at redshift z (see ``DeflectorConfig``)."""
    d = config.deflector
    log_sigma = math.log10(sigma_kms / 200.0)
    absolute = d.absolute_magnitude_at_200kms - 10.0 * log_sigma
    absolute += rng.normal(0.0, d.magnitude_scatter)
    m_ref = absolute + distance_modulus(z, config.h0, config.omega_m)
    m_ref += d.k_correction_mag_per_z * z
    log_r_kpc = d.log10_r_sersic_kpc_at_200kms + d.r_sersic_sigma_slope * log_sigma
    log_r_kpc += rng.normal(0.0, d.r_sersic_scatter_dex)
    r_sersic = 10.0**log_r_kpc / kpc_per_arcsec(z, config.h0, config.omega_m)
    n = rng.uniform(*d.sersic_index_range)
    q = rng.uniform(*d.axis_ratio_range)
    phi = rng.uniform(0.0, np.pi)
    magnitudes = m_ref + colours(config.colours.red_galaxy, rng)
    return SersicLight(x, y, r_sersic, n, q, phi, magnitudes)


def source_light(config, x: float, y: float, rng: np.random.Generator) -> SersicLight:
    """A galaxy of the simple background-source population (``LensedSourceConfig``)."""
    s = config.source
    m_ref = rng.uniform(*s.magnitude_range)
    r_sersic = log_uniform(rng, *s.r_sersic_range_arcsec)
    n = rng.uniform(*s.sersic_index_range)
    q = rng.uniform(*s.axis_ratio_range)
    phi = rng.uniform(0.0, np.pi)
    magnitudes = m_ref + colours(config.colours.blue_galaxy, rng)
    return SersicLight(x, y, r_sersic, n, q, phi, magnitudes)
