"""Physical conversions for the substructure simulator (pure functions, documented units)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from astropy.cosmology import FlatLambdaCDM
from caustics.lenses.func import mass_to_rein_point

DISTANCE_KINDS = ("angular_diameter", "luminosity")
_MPC_PER_PC = 1e-6


@lru_cache(maxsize=32)
def lensing_distances_mpc(
    z_lens: float, z_source: float, h0: float, omega_m: float, kind: str = "angular_diameter"
) -> tuple[float, float, float]:
    """(D_l, D_s, D_ls) in Mpc for a flat ΛCDM cosmology.

    ``angular_diameter`` is the physical choice. ``luminosity`` reproduces DeepLenseSim, which uses
    luminosity distances and D_ls = D_s − D_l.
    """
    if kind not in DISTANCE_KINDS:
        raise ValueError(f"distance kind must be one of {DISTANCE_KINDS}, got {kind!r}")
    cosmo = FlatLambdaCDM(H0=h0, Om0=omega_m)
    if kind == "angular_diameter":
        d_l = cosmo.angular_diameter_distance(z_lens).value
        d_s = cosmo.angular_diameter_distance(z_source).value
        d_ls = cosmo.angular_diameter_distance(z_lens, z_source).value
    else:
        d_l = cosmo.luminosity_distance(z_lens).value
        d_s = cosmo.luminosity_distance(z_source).value
        d_ls = d_s - d_l
    return float(d_l), float(d_s), float(d_ls)


def einstein_radius_arcsec(
    mass_msun: np.ndarray | float,
    z_lens: float,
    z_source: float,
    h0: float = 70.0,
    omega_m: float = 0.3,
    distances: str = "angular_diameter",
) -> np.ndarray:
    """Einstein radius θ_E = sqrt(4GM/c² · D_ls/(D_l D_s)) of a point mass, in arcsec.

    Evaluated with caustics' ``mass_to_rein_point`` (distances in Mpc, mass in M☉).
    """
    d_l, d_s, d_ls = lensing_distances_mpc(z_lens, z_source, h0, omega_m, distances)
    mass = torch.as_tensor(np.asarray(mass_msun, dtype=np.float64))
    rein = mass_to_rein_point(mass, torch.tensor(d_ls), torch.tensor(d_l), torch.tensor(d_s))
    return rein.numpy()


def axion_half_length_arcsec(axion_mass_ev: np.ndarray | float, coefficient: float) -> np.ndarray:
    """Half-length of the vortex string: coefficient / (2 m_a) arcsec (DeepLenseSim's relation)."""
    return coefficient / (2.0 * np.asarray(axion_mass_ev, dtype=np.float64))


def sample_power_law(
    rng: np.random.Generator, n: int, low: float, high: float, slope: float
) -> np.ndarray:
    """Draw n values from p(m) ∝ m^slope on [low, high] by inverting the CDF (slope ≠ −1)."""
    a = slope + 1.0
    u = rng.uniform(0.0, 1.0, size=n)
    lo, hi = low**a, high**a
    return (lo + (hi - lo) * u) ** (1.0 / a)
