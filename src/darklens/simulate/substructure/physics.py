"""Substructure-specific relations (pure functions, documented units)."""

from __future__ import annotations

import numpy as np


def axion_half_length_arcsec(axion_mass_ev: np.ndarray | float, coefficient: float) -> np.ndarray:
    """Half-length of the vortex string: coefficient / (2 m_a) arcsec (DeepLenseSim's relation)."""
    return coefficient / (2.0 * np.asarray(axion_mass_ev, dtype=np.float64))


def sample_power_law(u: np.ndarray, low: float, high: float, slope: float) -> np.ndarray:
    """Values of p(m) ∝ m^slope on [low, high] for uniforms u in [0, 1): the inverse CDF
    (slope ≠ −1)."""
    a = slope + 1.0
    lo, hi = low**a, high**a
    return (lo + (hi - lo) * u) ** (1.0 / a)
