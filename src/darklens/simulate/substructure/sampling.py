"""Per-image random draws, a whole group of same-label images at once.

Image i's parameters depend only on (config, seed, i, label): every draw takes the next slots of
image i's own counter-based stream (:class:`~darklens.simulate.func.rng.CounterRandom`), in a
fixed order per label, in float64 on the host — so they are the same whatever the block, the
worker or the device that renders the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darklens.simulate.func.rng import PARAMS_STREAM, VIEW_STREAM, CounterRandom, image_rng
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


@dataclass
class ParamGroup:
    """The parameters of b images of one label: per-image values [b], point masses [b, K]."""

    label: int
    source_x: np.ndarray
    source_y: np.ndarray
    exposure_s: np.ndarray
    point_x: np.ndarray
    point_y: np.ndarray
    point_mass: np.ndarray
    subhalo_mass: np.ndarray  # [b, K] for CDM, [b, 0] otherwise
    axion_mass_ev: np.ndarray  # NaN unless axion
    vortex_angle_rad: np.ndarray
    vortex_half_length_arcsec: np.ndarray

    def __len__(self) -> int:
        return len(self.source_x)

    @classmethod
    def stack(cls, label: int, images: Sequence[ImageParams]) -> ParamGroup:
        """The group of same-label images drawn one by one (the inverse of :meth:`image`)."""

        def column(name: str) -> np.ndarray:
            return np.array([getattr(p, name) for p in images], dtype=np.float64)

        def rows(name: str) -> np.ndarray:
            return np.stack([getattr(p, name) for p in images]).astype(np.float64)

        return cls(
            label, column("source_x"), column("source_y"), column("exposure_s"),
            rows("point_x"), rows("point_y"), rows("point_mass"), rows("subhalo_mass"),
            column("axion_mass_ev"), column("vortex_angle_rad"),
            column("vortex_half_length_arcsec"),
        )  # fmt: skip

    def image(self, j: int) -> ImageParams:
        """Image j of the group as one :class:`ImageParams`."""
        return ImageParams(
            self.label,
            float(self.source_x[j]),
            float(self.source_y[j]),
            float(self.exposure_s[j]),
            self.point_x[j],
            self.point_y[j],
            self.point_mass[j],
            self.subhalo_mass[j],
            float(self.axion_mass_ev[j]),
            float(self.vortex_angle_rad[j]),
            float(self.vortex_half_length_arcsec[j]),
        )


def draw_group_params(config: SubstructureConfig, label: int, rng: CounterRandom) -> ParamGroup:
    """Draw the parameters of len(rng) images of one label, in a fixed order per label."""
    kind = config.class_names[label]
    b = len(rng)
    src = config.source
    source = rng.uniform(-src.center_max_arcsec, src.center_max_arcsec, size=2)
    inst = config.instrument
    if inst.noise == "counts":
        exposure = 10.0 ** rng.uniform(*inst.log10_exposure_range)
    else:
        exposure = np.full(b, inst.total_exposure_s)
    nan = np.full(b, np.nan)
    empty = np.zeros((b, 0))
    group = ParamGroup(
        label, source[:, 0], source[:, 1], exposure, empty, empty, empty, empty, nan, nan, nan
    )
    if kind == "cdm":
        cdm = config.cdm
        u = rng.random(cdm.n_subhalos)
        masses = sample_power_law(u, cdm.mass_min_msun, cdm.mass_max_msun, cdm.mass_slope)
        radius = rng.uniform(cdm.r_min_arcsec, cdm.r_max_arcsec, size=cdm.n_subhalos)
        angle = rng.uniform(0.0, 2.0 * np.pi, size=cdm.n_subhalos)
        # DeepLenseSim's convention: x = r sin θ, y = r cos θ.
        group.point_x = radius * np.sin(angle)
        group.point_y = radius * np.cos(angle)
        group.point_mass = group.subhalo_mass = masses
    elif kind == "axion":
        ax = config.axion
        axion_mass = 10.0 ** rng.uniform(*ax.log10_axion_mass_ev_range)
        half_length = axion_half_length_arcsec(axion_mass, ax.length_coefficient)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        along = half_length[:, None] * np.linspace(-1.0, 1.0, ax.n_points)[None, :]
        group.point_x = along * np.cos(angle)[:, None]
        group.point_y = along * np.sin(angle)[:, None]
        group.point_mass = np.full((b, ax.n_points), ax.total_mass_msun / ax.n_points)
        group.axion_mass_ev = axion_mass
        group.vortex_angle_rad = angle
        group.vortex_half_length_arcsec = half_length
    return group


def draw_image_params(config: SubstructureConfig, label: int, seed: int, index: int) -> ImageParams:
    """Image ``index``'s parameters for run ``seed`` (as the dataset engine draws them); with
    per-image views (:attr:`SubstructureConfig.per_image_views`) also its view, from the image's
    own view stream."""
    params = draw_group_params(config, label, CounterRandom(seed, [index], PARAMS_STREAM)).image(0)
    if config.per_image_views:
        rng = image_rng(seed, index, VIEW_STREAM)
        params.view = draw_view(config, label, rng, params.exposure_s)
    return params
