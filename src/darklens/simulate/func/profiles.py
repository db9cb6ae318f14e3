"""Light profiles and ray shooting on batched tensors; light normalised to unit total flux.

Each ``*_unit`` function returns surface brightness per arcsec² of a profile whose total flux is
1 (so multiplying by a band's flux in e-/s gives that band's image). Parameters are tensors of
shape [B, 1] broadcast against coordinates [1, P] or [B, P]; every operation is elementwise, so an
image's values never depend on the other images in its batch. Normalisations are computed in
float64 NumPy (``*_norm``). Conventions follow lenstronomy: Sérsic R_sersic is the product-average
radius (caustics' major-axis radius is R_sersic / √q), k = 1.9992 n − 0.3271.
"""

from __future__ import annotations

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


def spiral_arm_pattern(
    disc: dict[str, torch.Tensor],
    arms: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> torch.Tensor:
    """Logarithmic-spiral pattern of mean 1 over every ellipse of the disc: ((1 + cos Θ)/2)² /
    (3/8), Θ = m (φ − phase) − (m / tan pitch) ln(r / R) in the disc's deprojected coordinates
    (``components.SpiralArms``); disc light × pattern is the arms' light, of the disc's flux."""
    xr, yr = translate_rotate(x, y, disc["x"], disc["y"], disc["phi"])
    ex, ey = to_elliptical(xr, yr, disc["q"])
    radius = disc["r_major"]
    r = torch.sqrt(ex.square() + ey.square() + (_ARM_SOFTENING * radius).square())
    m = arms["n_arms"]
    theta = m * (torch.atan2(ey, ex) - arms["phase"]) - m / torch.tan(arms["pitch"]) * torch.log(
        r / radius
    )
    return (0.5 * (1.0 + torch.cos(theta))).square() / _ARM_PROFILE_MEAN


def arc_unit_norm(
    radius: np.ndarray, width: np.ndarray, q: np.ndarray, extent: np.ndarray
) -> np.ndarray:
    """Peak of a unit-flux arc: a Gaussian annulus windowed by exp(−Δφ²/2 extent²) in angle
    (|Δφ| ≤ π), i.e. :func:`ring_unit_norm` × 2π / (extent √(2π) erf(π / (√2 extent)))."""
    extent = np.asarray(extent, dtype=np.float64)
    window = extent * np.sqrt(2.0 * np.pi) * erf(np.pi / (np.sqrt(2.0) * extent))
    return ring_unit_norm(radius, width, q) * 2.0 * np.pi / window


def arcs_unit(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Σ_k weight_k × unit-flux arc k; parameters [B, K] (x, y, q, phi, radius, width, angle,
    extent, norm, weight), coordinates [1, P]. Slots of weight 0 add nothing."""
    total = torch.zeros((p["x"].shape[0], x.shape[-1]), dtype=x.dtype, device=x.device)
    for k in range(p["x"].shape[1]):
        pk = {name: value[:, k : k + 1] for name, value in p.items()}
        xr, yr = translate_rotate(x, y, pk["x"], pk["y"], pk["phi"])
        ex, ey = to_elliptical(xr, yr, pk["q"])
        e = torch.sqrt(ex.square() + ey.square())
        delta = torch.remainder(torch.atan2(ey, ex) - pk["angle"] + np.pi, 2.0 * np.pi) - np.pi
        radial = ((e - pk["radius"]) / pk["width"]).square()
        angular = (delta / pk["extent"]).square()
        total.add_(pk["weight"] * pk["norm"] * torch.exp(-0.5 * (radial + angular)))
    return total


def gaussian_clumps_unit(
    p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Σ_k weight_k × unit-flux circular Gaussian (σ_k) at (x_k, y_k); parameters [B, K],
    coordinates [1, P] or [B, P] (ray-shot source-plane positions). Empty slots (weight 0 in
    every image) are skipped."""
    shape = (max(p["x"].shape[0], x.shape[0]), x.shape[-1])
    total = torch.zeros(shape, dtype=x.dtype, device=x.device)
    used = (p["weight"] > 0).any(dim=0).tolist()
    for k in range(p["x"].shape[1]):
        if not used[k]:  # adds exactly zero to every image: skipping it changes no bit
            continue
        sigma2 = p["sigma"][:, k : k + 1].square()
        r2 = (x - p["x"][:, k : k + 1]).square() + (y - p["y"][:, k : k + 1]).square()
        amplitude = p["weight"][:, k : k + 1] / (2.0 * np.pi * sigma2)
        total.add_(amplitude * torch.exp(-0.5 * r2 / sigma2))
    return total


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


def subtract_point_deflections(
    beta_x: torch.Tensor,
    beta_y: torch.Tensor,
    gx: torch.Tensor,
    gy: torch.Tensor,
    point_x: torch.Tensor,
    point_y: torch.Tensor,
    point_rein: torch.Tensor,
) -> None:
    """β −= Σ_k θ_E,k² (θ − θ_k)/|θ − θ_k|², accumulated in a fixed order over k (in place).

    caustics' ``reduced_deflection_angle_point`` written out with in-place operations (it
    dominates the cost of substructure images); point_* are [B, K] arcsec, the grid [1, P].
    """
    rein2 = point_rein.square()
    for k in range(point_x.shape[1]):
        dx = gx - point_x[:, k : k + 1]
        dy = gy - point_y[:, k : k + 1]
        scale = (dx.square() + dy.square()).reciprocal_().mul_(rein2[:, k : k + 1])
        beta_x.sub_(dx.mul_(scale))
        beta_y.sub_(dy.mul_(scale))
