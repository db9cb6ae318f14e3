"""Substructure-specific relations (pure functions, documented units)."""

from __future__ import annotations

import numpy as np

from darklens.simulate.func.cosmology import deflection_rescaling
from darklens.simulate.substructure.config import SubstructureConfig


def axion_half_length_arcsec(axion_mass_ev: np.ndarray | float, coefficient: float) -> np.ndarray:
    """Half-length of the vortex string: coefficient / (2 m_a) arcsec (DeepLenseSim's relation)."""
    return coefficient / (2.0 * np.asarray(axion_mass_ev, dtype=np.float64))


def sample_power_law(u: np.ndarray, low: float, high: float, slope: float) -> np.ndarray:
    """Values of p(m) ∝ m^slope on [low, high] for uniforms u in [0, 1): the inverse CDF
    (slope ≠ −1)."""
    a = slope + 1.0
    lo, hi = low**a, high**a
    return (lo + (hi - lo) * u) ** (1.0 / a)


def distance_kind(config: SubstructureConfig) -> str:
    """Distances behind the Einstein radii: angular-diameter, or DeepLenseSim's in compat mode."""
    return config.compat.distances if config.deeplense_compat else "angular_diameter"


def deflection_scale(config: SubstructureConfig) -> float:
    """β multiplying every deflection: 1, or in compat mode with a ``z_source_convention`` the
    rescaling of θ_E values defined for that source redshift to the actual source (as
    lenstronomy's SimAPI does for DeepLenseSim's Models II and III)."""
    compat, lens = config.compat, config.lens
    if not config.deeplense_compat or compat.z_source_convention is None:
        return 1.0
    return deflection_rescaling(
        lens.z_lens,
        lens.z_source,
        compat.z_source_convention,
        compat.convention_h0,
        compat.convention_omega_m,
    )
