"""Per-image random draws. Image i's parameters depend only on (config, seed, i)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.physics import axion_half_length_arcsec, sample_power_law
from darklens.simulate.substructure.views import ImageView, draw_view


@dataclass
class ImageParams:
    """Physical parameters of one image (angles in arcsec, masses in M☉)."""

    label: int
    source_x: float
    source_y: float
    exposure_s: float  # the exposure used for noise (counts noise: drawn per image)
    point_x: np.ndarray  # substructure point masses (subhalos or vortex elements)
    point_y: np.ndarray
    point_mass: np.ndarray
    subhalo_mass: np.ndarray  # CDM truth only (empty otherwise)
    axion_mass_ev: float = float("nan")
    vortex_angle_rad: float = float("nan")
    vortex_half_length_arcsec: float = float("nan")
    view: ImageView | None = None  # per-image settings (config.per_image_views), else None


def draw_image_params(
    config: SubstructureConfig, label: int, rng: np.random.Generator
) -> ImageParams:
    """Draw one image's parameters in a fixed order (so draws never shift between versions)."""
    kind = config.class_names[label]
    src = config.source
    source_x, source_y = rng.uniform(-src.center_max_arcsec, src.center_max_arcsec, size=2)
    inst = config.instrument
    if inst.noise == "counts":
        exposure = float(10.0 ** rng.uniform(*inst.log10_exposure_range))
    else:
        exposure = inst.total_exposure_s
    empty = np.zeros(0)
    params = ImageParams(
        label, float(source_x), float(source_y), exposure, empty, empty, empty, empty
    )
    if kind == "cdm":
        cdm = config.cdm
        masses = sample_power_law(
            rng, cdm.n_subhalos, cdm.mass_min_msun, cdm.mass_max_msun, cdm.mass_slope
        )
        radius = rng.uniform(cdm.r_min_arcsec, cdm.r_max_arcsec, size=cdm.n_subhalos)
        angle = rng.uniform(0.0, 2.0 * np.pi, size=cdm.n_subhalos)
        # DeepLenseSim's convention: x = r sin θ, y = r cos θ.
        params.point_x = radius * np.sin(angle)
        params.point_y = radius * np.cos(angle)
        params.point_mass = masses
        params.subhalo_mass = masses
    elif kind == "axion":
        ax = config.axion
        axion_mass = float(10.0 ** rng.uniform(*ax.log10_axion_mass_ev_range))
        half_length = float(axion_half_length_arcsec(axion_mass, ax.length_coefficient))
        angle = float(rng.uniform(0.0, 2.0 * np.pi))
        along = np.linspace(-half_length, half_length, ax.n_points)
        params.point_x = along * np.cos(angle)
        params.point_y = along * np.sin(angle)
        params.point_mass = np.full(ax.n_points, ax.total_mass_msun / ax.n_points)
        params.axion_mass_ev = axion_mass
        params.vortex_angle_rad = angle
        params.vortex_half_length_arcsec = half_length
    if config.per_image_views:
        params.view = draw_view(config, label, rng, exposure)
    return params
