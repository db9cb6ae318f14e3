"""Flat ΛCDM distances, Einstein radii and deflection rescaling (angles arcsec, masses M☉).

Two families: exact astropy distances for a handful of fixed redshifts (the substructure presets,
cached), and tabulated comoving distances (dz = 0.002 up to z = 10; interpolation error < 1e-5
relative) for per-image redshift draws that must cost microseconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

SPEED_OF_LIGHT_KMS = 299_792.458
ARCSEC_PER_RADIAN = 180.0 * 3600.0 / np.pi
DISTANCE_KINDS = ("angular_diameter", "luminosity")
_Z_GRID = np.linspace(0.0, 10.0, 5001)


# -- exact distances for fixed redshifts ---------------------------------------------------------
@lru_cache(maxsize=32)
def lensing_distances_mpc(
    z_lens: float, z_source: float, h0: float, omega_m: float, kind: str = "angular_diameter"
) -> tuple[float, float, float]:
    """(D_l, D_s, D_ls) in Mpc for a flat ΛCDM cosmology.

    ``angular_diameter`` is the physical choice. ``luminosity`` reproduces DeepLenseSim's
    ``mass_to_radius``, which uses luminosity distances and D_ls = D_s − D_l.
    """
    if kind not in DISTANCE_KINDS:
        raise ValueError(f"distance kind must be one of {DISTANCE_KINDS}, got {kind!r}")
    from astropy.cosmology import FlatLambdaCDM  # ~1 s to import: only when a renderer is built

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


def point_mass_einstein_radius_arcsec(
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
    from caustics.lenses.func import mass_to_rein_point

    rein = mass_to_rein_point(mass, torch.tensor(d_ls), torch.tensor(d_l), torch.tensor(d_s))
    return rein.numpy()


@lru_cache(maxsize=32)
def deflection_rescaling(
    z_lens: float, z_source: float, z_convention: float, h0: float, omega_m: float
) -> float:
    """β = (D_ls/D_s)(z_source) / (D_ls/D_s)(z_convention), angular-diameter distances.

    Lens parameters defined for a source at ``z_convention`` deflect a source at ``z_source`` by
    β times as much: lenstronomy's ``z_source_convention`` (its multi-plane ray tracing with all
    deflectors on one plane, and ``Background.beta_double_source_plane``).
    """
    if z_source == z_convention:
        return 1.0
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=h0, Om0=omega_m)
    ratio = []
    for z in (z_source, z_convention):
        d_s = cosmo.angular_diameter_distance(z).value
        d_ls = cosmo.angular_diameter_distance(z_lens, z).value
        ratio.append(d_ls / d_s)
    return float(ratio[0] / ratio[1])


# -- tabulated distances for per-image draws -----------------------------------------------------
@lru_cache(maxsize=8)
def _comoving_table_mpc(h0: float, omega_m: float) -> np.ndarray:
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=h0, Om0=omega_m).comoving_distance(_Z_GRID).value


def comoving_distance_mpc(z: float, h0: float, omega_m: float) -> float:
    return float(np.interp(z, _Z_GRID, _comoving_table_mpc(h0, omega_m)))


def angular_diameter_distance_mpc(z1: float, z2: float, h0: float, omega_m: float) -> float:
    """D_A between z1 < z2 (flat universe: (D_C(z2) − D_C(z1)) / (1 + z2)); z1 = 0 for D_A(z2)."""
    d1 = comoving_distance_mpc(z1, h0, omega_m) if z1 > 0 else 0.0
    return (comoving_distance_mpc(z2, h0, omega_m) - d1) / (1.0 + z2)


def distance_modulus(z: float, h0: float, omega_m: float) -> float:
    """5 log10(D_L / 10 pc) with D_L = (1 + z) D_C."""
    d_l_pc = (1.0 + z) * comoving_distance_mpc(z, h0, omega_m) * 1e6
    return 5.0 * np.log10(d_l_pc / 10.0)


def kpc_per_arcsec(z: float, h0: float, omega_m: float) -> float:
    return angular_diameter_distance_mpc(0.0, z, h0, omega_m) * 1e3 / ARCSEC_PER_RADIAN


def comoving_distances_mpc(z: np.ndarray, h0: float, omega_m: float) -> np.ndarray:
    """Tabulated comoving distances (Mpc) for an array of redshifts."""
    return np.interp(np.asarray(z, dtype=np.float64), _Z_GRID, _comoving_table_mpc(h0, omega_m))


def lensing_efficiency(z_lens: float, z_source: float, h0: float, omega_m: float) -> float:
    """D_ls / D_s (angular-diameter distances; 0 when the source is not behind the lens)."""
    if z_source <= z_lens:
        return 0.0
    d_s = angular_diameter_distance_mpc(0.0, z_source, h0, omega_m)
    return angular_diameter_distance_mpc(z_lens, z_source, h0, omega_m) / d_s


def sis_einstein_radius_arcsec(
    sigma_kms: float, z_lens: float, z_source: float, h0: float, omega_m: float
) -> float:
    """θ_E = 4π (σ/c)² D_ls/D_s of a singular isothermal sphere, in arcsec."""
    efficiency = lensing_efficiency(z_lens, z_source, h0, omega_m)
    return 4.0 * np.pi * (sigma_kms / SPEED_OF_LIGHT_KMS) ** 2 * efficiency * ARCSEC_PER_RADIAN


def sis_velocity_dispersion_kms(
    theta_e_arcsec: float, z_lens: float, z_source: float, h0: float, omega_m: float
) -> float:
    """σ of the singular isothermal sphere with Einstein radius θ_E = 4π (σ/c)² D_ls / D_s."""
    d_s = angular_diameter_distance_mpc(0.0, z_source, h0, omega_m)
    d_ls = angular_diameter_distance_mpc(z_lens, z_source, h0, omega_m)
    theta_rad = theta_e_arcsec / ARCSEC_PER_RADIAN
    return SPEED_OF_LIGHT_KMS * float(np.sqrt(theta_rad * d_s / (4.0 * np.pi * d_ls)))
