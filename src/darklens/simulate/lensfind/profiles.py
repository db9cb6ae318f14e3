"""Light profiles and lensing on batched tensors, normalised to unit total flux.

Each ``*_unit`` function returns surface brightness per arcsec² of a profile whose total flux is
1 (so multiplying by a band's flux in e-/s gives that band's image). Parameters are tensors of
shape [B, 1] broadcast against coordinates [1, P] or [B, P]; every operation is elementwise, so an
image's values never depend on the other images in its batch. Normalisations are computed in
float64 NumPy (``*_norm``). Conventions follow lenstronomy: Sérsic R_sersic is the product-average
radius (caustics' major-axis radius is R_sersic / √q), k = 1.9992 n − 0.3271.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from caustics.lenses.func import (
    reduced_deflection_angle_external_shear,
    reduced_deflection_angle_sie,
)
from caustics.light.func import brightness_sersic, k_lenstronomy
from caustics.utils import to_elliptical, translate_rotate
from scipy.special import erf, gammaln

# lenstronomy's SIE is a NIE with this core (arcsec): it keeps the centre pixel finite.
SIE_CORE_ARCSEC = 1e-10
# Mean of ((1 + cos Θ)/2)² over Θ: dividing by it keeps a spiral disc's total flux unchanged.
_ARM_PROFILE_MEAN = 3.0 / 8.0
# The log-spiral phase uses r softened by this fraction of the disc radius (finite at r = 0).
_ARM_SOFTENING = 0.05


def sersic_unit_norm(r_sersic: np.ndarray, n: np.ndarray) -> np.ndarray:
    """I_e of a unit-flux Sérsic: 1 / (2π n R² e^k k^(−2n) Γ(2n)) (R in arcsec → per arcsec²)."""
    k = k_lenstronomy(np.asarray(n, dtype=np.float64))
    log_flux = (
        np.log(2.0 * np.pi * n) + 2.0 * np.log(r_sersic) + k - 2.0 * n * np.log(k) + gammaln(2 * n)
    )
    return np.exp(-log_flux)


def ring_unit_norm(radius: np.ndarray, width: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Peak of a unit-flux elliptical Gaussian annulus: 1 / (2π q ∫ e exp(−(e−R)²/2w²) de)."""
    radius, width, q = (np.asarray(v, dtype=np.float64) for v in (radius, width, q))
    integral = width**2 * np.exp(-(radius**2) / (2 * width**2)) + radius * width * np.sqrt(
        np.pi / 2
    ) * (1 + erf(radius / (np.sqrt(2) * width)))
    return 1.0 / (2.0 * np.pi * q * integral)


def sersic_unit(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unit-flux elliptical Sérsic at (x, y); p holds x, y, q, phi, n, r_major, norm, k."""
    return brightness_sersic(
        p["x"], p["y"], p["q"], p["phi"], p["n"], p["r_major"], p["norm"], x, y, p["k"]
    )


def spiral_modulation(
    disc: dict[str, torch.Tensor],
    arms: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Flux-conserving logarithmic-spiral factor for the disc (see ``sampling.SpiralArms``)."""
    xr, yr = translate_rotate(x, y, disc["x"], disc["y"], disc["phi"])
    ex, ey = to_elliptical(xr, yr, disc["q"])
    radius = disc["r_major"]
    r = torch.sqrt(ex.square() + ey.square() + (_ARM_SOFTENING * radius).square())
    m = arms["n_arms"]
    theta = m * (torch.atan2(ey, ex) - arms["phase"]) - m / torch.tan(arms["pitch"]) * torch.log(
        r / radius
    )
    amplitude = arms["amplitude"]
    profile = (0.5 * (1.0 + torch.cos(theta))).square()
    return (1.0 - amplitude) + amplitude * profile / _ARM_PROFILE_MEAN


def ring_unit(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unit-flux Gaussian annulus in elliptical radius (p: x, y, q, phi, radius, width, norm)."""
    xr, yr = translate_rotate(x, y, p["x"], p["y"], p["phi"])
    ex, ey = to_elliptical(xr, yr, p["q"])
    e = torch.sqrt(ex.square() + ey.square())
    return p["norm"] * torch.exp(-0.5 * ((e - p["radius"]) / p["width"]).square())


def ray_trace(
    lens: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source-plane positions β = θ − α_SIE(θ) − α_shear(θ) (shear about the lens centre)."""
    ax, ay = reduced_deflection_angle_sie(
        lens["x"], lens["y"], lens["q"], lens["phi"], lens["theta_e"], x, y, SIE_CORE_ARCSEC
    )
    sx, sy = reduced_deflection_angle_external_shear(
        lens["x"], lens["y"], lens["gamma1"], lens["gamma2"], x, y
    )
    return x - ax - sx, y - ay - sy


def gaussian_psf_kernel(fwhm_arcsec: float, pixel_scale: float, truncation: float, radius: int):
    """1-D Gaussian PSF weights on offsets −radius..radius pixels, as scipy's gaussian_filter
    (lenstronomy's Gaussian PSF): sampled, cut at int(truncation·σ + 0.5), normalised to 1;
    zero beyond the cut so kernels of different widths share one length."""
    sigma = fwhm_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale
    own = int(truncation * sigma + 0.5)
    if own > radius:
        raise ValueError(f"PSF radius {own} px exceeds the kernel length {radius}")
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.where(np.abs(offsets) <= own, np.exp(-0.5 * (offsets / sigma) ** 2), 0.0)
    return weights / weights.sum()


def kernel_radius(fwhm_arcsec: float, pixel_scale: float, truncation: float) -> int:
    sigma = fwhm_arcsec / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_scale
    return int(truncation * sigma + 0.5)


def convolve_per_image(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve [B, C, H, W] with one symmetric 1-D kernel per image and channel ([B, C, K])
    along both axes, edges extended, as a fixed sequence of shifted weighted sums (so an image's
    bytes never depend on its batch)."""
    radius = kernels.shape[-1] // 2
    height, width = images.shape[-2:]
    padded = torch.nn.functional.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = torch.zeros_like(padded[..., :, :width])
    for tap in range(kernels.shape[-1]):
        rows.add_(padded[..., :, tap : tap + width] * kernels[:, :, tap, None, None])
    out = torch.zeros_like(images)
    for tap in range(kernels.shape[-1]):
        out.add_(rows[..., tap : tap + height, :] * kernels[:, :, tap, None, None])
    return out


def psf_star(
    flux: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    sigma: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Surface brightness of a point source seen through a Gaussian PSF of width σ (arcsec)."""
    r2 = (x - x0).square() + (y - y0).square()
    return flux / (2.0 * math.pi * sigma.square()) * torch.exp(-0.5 * r2 / sigma.square())
