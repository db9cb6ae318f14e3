"""Detectability of a lensed source, and the lens definitions built on it.

Measured per image from the noiseless render: ``source`` (the lensed source alone, [bands, H, W],
e-/s per pixel) and ``model`` (everything). The noise a pixel's source signal is judged against
is the image's own, σ² = background² + max(model, 0)/t (sky, read-out and photon noise of all its
light, lenstronomy's model), plus (ε · other light)² for an imperfect subtraction of the lens
light (ε = ``lens_light_residual``; 0 is Collett 2015's Poisson-limited subtraction).

- ``arc_snr``: the optimal-aperture S/N of the lensed source in each band (Collett 2015 and
  LensPop's ``SNfunc``): pixels ranked by s/σ, the largest Σ s / sqrt(Σ σ²) over the top-k sets;
- ``n_pix_source``: pixels where the source beats both its noise (s > σ) and the other light
  in the pixel (s > model − s): what of the arcs stands out (best band);
- ``n_source_im``: connected groups (8-neighbour) of those pixels;
- ``mag_eff``: their source flux over the unlensed source flux (the magnification of what is
  visible);
- ``resolved``: μ · R_source > seeing FWHM (Collett 2015), and the seeing test
  θ_E² > R_source² + (FWHM/2)², both in the best band (highest ``arc_snr``).

Definitions (:class:`~darklens.simulate.lensfind.config.LensDefinitionConfig`): ``lenspop``
(μ ≥ 3, arc S/N ≥ 20, resolved, seeing test), ``challenge2`` (n_source_im > 0, mag_eff > 1.6,
n_pix_source > 20, the Bologna challenge 2.0 label) and ``any``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LENSPOP_MIN_MAGNIFICATION = 3.0
LENSPOP_MIN_SNR = 20.0
CHALLENGE2_MIN_MAG_EFF = 1.6
CHALLENGE2_MIN_PIXELS = 20
_EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)
# A bound on the S/N is compared with the threshold after this factor (the magnification grid's
# estimate of μ carries ~1 % errors): a system is only skipped when it is clearly undetectable.
_BOUND_SAFETY = 1.1


@dataclass(frozen=True)
class Detectability:
    """What a survey image shows of one lensed source (see the module docstring)."""

    arc_snr_bands: np.ndarray
    best_band: int
    n_pix_source: int
    n_source_im: int
    mag_eff: float
    resolved: bool
    seeing_test: bool
    magnification: float

    @property
    def arc_snr(self) -> float:
        return float(self.arc_snr_bands[self.best_band])


def pixel_noise(
    model: np.ndarray,
    source: np.ndarray,
    background: np.ndarray,
    exposure: np.ndarray,
    lens_light_residual: float = 0.0,
) -> np.ndarray:
    """σ per pixel [bands, H, W] the source is judged against (module docstring)."""
    variance = background[:, None, None] ** 2 + np.maximum(model, 0.0) / exposure[:, None, None]
    if lens_light_residual > 0:
        variance = variance + (lens_light_residual * np.maximum(model - source, 0.0)) ** 2
    return np.sqrt(variance)


def optimal_aperture_snr(signal: np.ndarray, sigma: np.ndarray) -> float:
    """max over k of (sum of the k best s) / sqrt(sum of their σ²), pixels ranked by s/σ."""
    s, n = signal.ravel().astype(np.float64), sigma.ravel().astype(np.float64)
    positive = s > 0
    if not positive.any():
        return 0.0
    s, n = s[positive], n[positive]
    order = np.argsort(-s / n, kind="stable")
    return float(np.max(np.cumsum(s[order]) / np.sqrt(np.cumsum(n[order] ** 2))))


def measure(
    source: np.ndarray,
    model: np.ndarray,
    background: np.ndarray,
    exposure: np.ndarray,
    unlensed_flux: np.ndarray,
    *,
    magnification: float,
    source_radius_arcsec: float,
    theta_e_arcsec: float,
    seeing_fwhm_arcsec: np.ndarray,
    lens_light_residual: float = 0.0,
) -> Detectability:
    """:class:`Detectability` of a source from the noiseless images of one system."""
    source = source.astype(np.float64)
    model = model.astype(np.float64)
    sigma = pixel_noise(model, source, background, exposure, lens_light_residual)
    snr = np.array([optimal_aperture_snr(source[b], sigma[b]) for b in range(source.shape[0])])
    best = int(np.argmax(snr))
    visible = (source[best] > sigma[best]) & (source[best] > model[best] - source[best])
    _, n_images = ndimage.label(visible, structure=_EIGHT_NEIGHBOURS)
    flux = float(unlensed_flux[best])
    fwhm = float(seeing_fwhm_arcsec[best])
    return Detectability(
        arc_snr_bands=snr,
        best_band=best,
        n_pix_source=int(visible.sum()),
        n_source_im=int(n_images),
        mag_eff=float(source[best][visible].sum() / flux) if flux > 0 else 0.0,
        resolved=bool(magnification * source_radius_arcsec > fwhm),
        seeing_test=bool(theta_e_arcsec**2 > source_radius_arcsec**2 + (fwhm / 2.0) ** 2),
        magnification=float(magnification),
    )


def meets_definition(name: str, det: Detectability) -> bool:
    """Whether a system with these measures is a lens under the named definition."""
    if name == "any":
        return True
    if name == "lenspop":
        return (
            det.magnification >= LENSPOP_MIN_MAGNIFICATION
            and det.arc_snr >= LENSPOP_MIN_SNR
            and det.resolved
            and det.seeing_test
        )
    if name == "challenge2":
        return (
            det.n_source_im > 0
            and det.mag_eff > CHALLENGE2_MIN_MAG_EFF
            and det.n_pix_source > CHALLENGE2_MIN_PIXELS
        )
    raise ValueError(f"unknown lens definition {name!r}")


def snr_upper_bound(
    lensed_flux: np.ndarray,
    peak_surface_brightness: np.ndarray,
    pixel_area: float,
    kernel_l2_squared: np.ndarray,
    background: np.ndarray,
) -> np.ndarray:
    """An upper bound per band on any S/N of the lensed source (optimal aperture ≤ matched filter
    ≤ sqrt(Σ s²) / σ_background), from Σ s² ≤ min(A · I_peak · F_lensed, F_lensed² · ‖k‖²):
    pixel values of a surface brightness never above I_peak (lensing conserves it; binning and
    the PSF only lower it), and ‖k ∗ p‖₂ ≤ ‖k‖₂ ‖p‖₁ for the PSF kernel k."""
    sum_sq = np.minimum(
        pixel_area * peak_surface_brightness * lensed_flux, lensed_flux**2 * kernel_l2_squared
    )
    return np.sqrt(sum_sq) / background


def may_meet_definition(
    name: str,
    magnification: float,
    snr_bound: np.ndarray,
    source_radius_arcsec: float,
    seeing_fwhm_arcsec: np.ndarray,
) -> bool:
    """False only when no render could meet the definition (checked before rendering)."""
    if name == "any":
        return True
    best = float(np.max(snr_bound)) * _BOUND_SAFETY
    if name == "lenspop":
        resolved = magnification * source_radius_arcsec * _BOUND_SAFETY > np.min(seeing_fwhm_arcsec)
        return (
            magnification * _BOUND_SAFETY >= LENSPOP_MIN_MAGNIFICATION
            and best >= LENSPOP_MIN_SNR
            and bool(resolved)
        )
    if name == "challenge2":
        return (
            magnification * _BOUND_SAFETY > CHALLENGE2_MIN_MAG_EFF
            and best**2 > CHALLENGE2_MIN_PIXELS + 1
        )
    raise ValueError(f"unknown lens definition {name!r}")


def peak_surface_brightness(flux: np.ndarray, r_sersic: float, n: float, norm: float) -> np.ndarray:
    """Central surface brightness (e-/s per arcsec²) of a Sérsic of total ``flux`` with unit
    normalisation ``norm`` (I_e of unit flux): I_0 = flux · norm · e^{k}, k = 1.9992 n − 0.3271."""
    return np.asarray(flux) * norm * math.exp(1.9992 * n - 0.3271)
