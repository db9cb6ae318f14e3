"""Parametric supernova light curves (Bazin et al. 2009, A&A 499, 653 shape), per band.

f(t) = A · exp(−u/τ_fall) / (1 + exp(−u/τ_rise)) with u = t − t₀ peaks at
u = τ_rise ln(τ_fall/τ_rise − 1). Here A and t₀ are fixed by the peak flux and the peak time, and
the flux is zero before the explosion. No templates: Ia and CC differ by their timescales, peak
magnitudes and colours (:class:`~darklens.simulate.transients.config.SupernovaTypeConfig`).
"""

from __future__ import annotations

import numpy as np


def bazin_peak_offset(tau_rise: np.ndarray, tau_fall: np.ndarray) -> np.ndarray:
    """Time from t₀ to the peak of the Bazin curve (days), needs τ_fall > τ_rise."""
    return tau_rise * np.log(tau_fall / tau_rise - 1.0)


def bazin_flux(
    t_days: np.ndarray,
    peak_flux: np.ndarray,
    peak_day: float,
    explosion_day: float,
    tau_rise: float,
    tau_fall: np.ndarray,
) -> np.ndarray:
    """Flux at times ``t_days`` [T] per band [bands] → [T, bands]; ``peak_flux`` [bands] is the
    maximum (reached at ``peak_day``), zero before ``explosion_day``."""
    t = np.asarray(t_days, dtype=np.float64)[:, None]
    tau_fall = np.asarray(tau_fall, dtype=np.float64)[None, :]
    t0 = peak_day - bazin_peak_offset(tau_rise, tau_fall)

    def shape(u: np.ndarray) -> np.ndarray:
        # exp(−u/τ_fall) / (1 + exp(−u/τ_rise)), written to stay finite long before t₀.
        return np.exp(-u / tau_fall - np.logaddexp(0.0, -u / tau_rise))

    values = shape(t - t0) / shape(peak_day - t0)
    values = np.where(t >= explosion_day, values, 0.0)
    return values * np.asarray(peak_flux, dtype=np.float64)[None, :]
