"""Per-object draws for lensed transients. Object i depends only on (config, seed, i, label).

Every object first draws its observing conditions (seeing and sky per epoch and band) and its
sub-pixel centre, then what its class needs. Lens and look-alike galaxies come from the
lens-finding simulator's population functions, so lenses here look like lenses there.
Positions are arcsec from the cutout centre, times days from the first epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from darklens.simulate.func.cosmology import distance_modulus, sis_velocity_dispersion_kms
from darklens.simulate.lensfind.components import (
    Deflector,
    SersicLight,
    deflector_mass,
    elliptical_light,
    source_light,
)
from darklens.simulate.transients.config import (
    NON_LENS_KINDS,
    OBJECT_KINDS,
    SN_TYPES,
    TransientsConfig,
)
from darklens.simulate.transients.lensing import LensedImages, solve_images
from darklens.simulate.transients.lightcurves import bazin_flux

KIND_CODES = {name: code for code, name in enumerate(OBJECT_KINDS)}
# Redraws of a lensed supernova's position until the lens makes >= 2 images.
_MAX_POSITION_TRIES = 20
_SN_DRAWS_PER_POSITION = 8  # supernova draws (time, brightness) tried per lensed position
SupernovaDraw = tuple["Supernova", LensedImages, tuple[float, float]]  # SN, images, unlensed x, y


@dataclass
class Supernova:
    """One supernova: type ("ia" or "cc"), redshift, unlensed peak magnitudes per band, times
    (days from the first epoch) and observer-frame Bazin timescales."""

    sn_type: str
    z: float
    peak_magnitudes: np.ndarray
    explosion_day: float
    peak_day: float
    tau_rise_days: float
    tau_fall_days: np.ndarray


@dataclass
class TransientParams:
    """Everything drawn for one object; absent components are None."""

    label: int
    kind: int
    seeing_fwhm_arcsec: np.ndarray  # [T, bands]
    sky_mag_arcsec2: np.ndarray  # [T, bands]
    z_lens: float = float("nan")
    z_source: float = float("nan")
    galaxy: SersicLight | None = None
    companion: SersicLight | None = None
    deflector: Deflector | None = None
    lensed: SersicLight | None = None
    supernova: Supernova | None = None
    images: LensedImages | None = None
    star_x: float = 0.0
    star_y: float = 0.0
    star_magnitudes: np.ndarray | None = None

    @property
    def theta_e(self) -> float:
        return self.deflector.theta_e if self.deflector is not None else float("nan")


def _around(x: float, y: float, radius: float, rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return x + radius * math.cos(angle), y + radius * math.sin(angle)


def _colours(table, rng: np.random.Generator) -> np.ndarray:
    ends = np.asarray(table, dtype=np.float64)
    return ends[:, 0] + rng.uniform() * (ends[:, 1] - ends[:, 0])


def draw_supernova(
    config: TransientsConfig, sn_type: str, z: float, rng: np.random.Generator
) -> Supernova:
    """A supernova of the given type at redshift z (see SupernovaTypeConfig)."""
    sn = getattr(config.supernova, sn_type)
    absolute = sn.peak_absolute_magnitude + rng.normal(0.0, sn.magnitude_scatter)
    m_ref = (
        absolute + distance_modulus(z, config.h0, config.omega_m) + sn.k_correction_mag_per_z * z
    )
    explosion = rng.uniform(*config.supernova.explosion_window_days)
    stretch = 1.0 + z
    return Supernova(
        sn_type=sn_type,
        z=z,
        peak_magnitudes=m_ref + np.asarray(sn.colours, dtype=np.float64),
        explosion_day=explosion,
        peak_day=explosion + sn.rise_days_rest * stretch,
        tau_rise_days=sn.tau_rise_days_rest * stretch,
        tau_fall_days=np.asarray(sn.tau_fall_days_rest, dtype=np.float64) * stretch,
    )


def supernova_light_curve(
    sn: Supernova, times_days: np.ndarray, zero_points: np.ndarray, delay_days: float = 0.0
) -> np.ndarray:
    """Unlensed flux (e-/s) [T, bands] at the epochs, the whole curve shifted by ``delay_days``."""
    peak_flux = 10.0 ** (-0.4 * (sn.peak_magnitudes - zero_points))
    return bazin_flux(
        times_days,
        peak_flux,
        sn.peak_day + delay_days,
        sn.explosion_day + delay_days,
        sn.tau_rise_days,
        sn.tau_fall_days,
    )


def point_sources(
    params: TransientParams, times_days: np.ndarray, zero_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (arcsec) [P] and fluxes (e-/s) [P, T, bands] of every point source: the
    supernova's images (each delayed and scaled by |μ|) or a star (constant)."""
    n_epochs, n_bands = len(times_days), len(zero_points)
    if params.images is not None and params.supernova is not None:
        images = params.images
        fluxes = [
            abs(mu) * supernova_light_curve(params.supernova, times_days, zero_points, delay)
            for mu, delay in zip(images.magnification, images.delay_days, strict=True)
        ]
        return images.x, images.y, np.array(fluxes).reshape(-1, n_epochs, n_bands)
    if params.star_magnitudes is not None:
        flux = 10.0 ** (-0.4 * (params.star_magnitudes - zero_points))
        flux = np.broadcast_to(flux, (1, n_epochs, n_bands)).copy()
        return np.array([params.star_x]), np.array([params.star_y]), flux
    empty = np.zeros(0)
    return empty, empty, np.zeros((0, n_epochs, n_bands))


def draw_transient_params(
    config: TransientsConfig, label: int, rng: np.random.Generator
) -> TransientParams:
    """Draw one object's parameters in a fixed order (so draws never shift between versions)."""
    inst = config.instrument
    seeing = np.stack(
        [rng.uniform(*b.seeing_fwhm_range_arcsec, size=inst.n_epochs) for b in inst.bands], 1
    )
    sky = np.stack(
        [rng.uniform(*b.sky_brightness_range_mag_arcsec2, size=inst.n_epochs) for b in inst.bands],
        1,
    )
    half_pixel = 0.5 * inst.pixel_scale_arcsec
    x0, y0 = (float(v) for v in rng.uniform(-half_pixel, half_pixel, size=2))
    if label == 0:
        weights = np.asarray(config.non_lens_fractions, dtype=np.float64)
        kind = NON_LENS_KINDS[int(rng.choice(len(NON_LENS_KINDS), p=weights / weights.sum()))]
    else:
        kind = OBJECT_KINDS[len(NON_LENS_KINDS) + label - 1]
    params = TransientParams(label, KIND_CODES[kind], seeing, sky)
    if kind in ("galaxy", "galaxy_pair") or label > 0:
        sn_lens = kind in ("lensed_sn_ia", "lensed_sn_cc")
        z_range = config.supernova.lensed_z_range if sn_lens else None
        _draw_lens_galaxy(params, config, x0, y0, rng, z_range)
    if kind == "galaxy_pair":
        where = _around(x0, y0, rng.uniform(*config.pair_separation_arcsec), rng)
        params.companion = source_light(config, *where, rng)
    elif kind in ("sn_ia_in_host", "sn_cc_in_host"):
        z = rng.uniform(*config.supernova.unlensed_host_z_range)
        host = source_light(config, x0, y0, rng)
        params.galaxy = host
        sn_type = SN_TYPES[kind != "sn_ia_in_host"]

        def in_host() -> SupernovaDraw:
            sn_x, sn_y = _around(x0, y0, host.r_sersic * rng.uniform(), rng)
            at = LensedImages(np.array([sn_x]), np.array([sn_y]), np.ones(1), np.zeros(1))
            return draw_supernova(config, sn_type, z, rng), at, (sn_x, sn_y)

        params.supernova, params.images, _ = seen_supernova(config, in_host, host.magnitudes)
        params.z_source = z
    elif kind == "star":
        params.star_x, params.star_y = x0, y0
        m_ref = rng.uniform(*config.star_magnitude_range)
        params.star_magnitudes = m_ref + _colours(config.colours.star, rng)
    elif kind == "galaxy_lens":
        theta_e = params.theta_e
        offset = theta_e * config.source.max_offset_theta_e * math.sqrt(rng.uniform())
        params.lensed = source_light(config, *_around(x0, y0, offset, rng), rng)
    elif kind in ("lensed_sn_ia", "lensed_sn_cc"):
        _draw_lensed_supernova(params, config, SN_TYPES[kind == "lensed_sn_cc"], rng)
    if label == 0:  # a look-alike galaxy is no lens: keep its redshift, drop the lensing
        params.deflector = None
        if params.supernova is None:
            params.z_source = float("nan")
    return params


def _draw_lens_galaxy(
    params: TransientParams,
    config: TransientsConfig,
    x0: float,
    y0: float,
    rng,
    z_source_range: tuple[float, float] | None = None,
) -> None:
    """The lens-galaxy population (shared by lenses and the lone / paired galaxies); the
    source redshift is drawn in ``z_source_range`` (default: the lensed-source range)."""
    d, s = config.deflector, config.source
    low, high = z_source_range or s.z_range
    z_lens = rng.uniform(*d.z_range)
    z_source = rng.uniform(max(low, z_lens + s.min_redshift_gap), high)
    theta_e = float(np.exp(rng.uniform(*np.log(d.theta_e_range_arcsec))))
    sigma = sis_velocity_dispersion_kms(theta_e, z_lens, z_source, config.h0, config.omega_m)
    params.galaxy = elliptical_light(config, z_lens, sigma, x0, y0, rng)
    params.deflector = deflector_mass(config, params.galaxy, theta_e, rng)
    params.z_lens, params.z_source = z_lens, z_source


def _draw_lensed_supernova(
    params: TransientParams, config: TransientsConfig, sn_type: str, rng
) -> None:
    lens = params.deflector
    assert lens is not None
    radius = config.supernova.max_offset_theta_e * lens.theta_e

    solved: list = []  # the current position's images; solving costs far more than an SN draw

    def lensed() -> SupernovaDraw:
        if not solved or solved[1] >= _SN_DRAWS_PER_POSITION:
            for _ in range(_MAX_POSITION_TRIES):
                sn_x, sn_y = _around(lens.x, lens.y, radius * math.sqrt(rng.uniform()), rng)
                images = solve_images(
                    lens, sn_x, sn_y, params.z_lens, params.z_source, config.h0, config.omega_m
                )
                if images.count >= 2:
                    break
            solved[:] = [(images, (sn_x, sn_y)), 0]
        (images, where), used = solved
        solved[1] = used + 1
        return draw_supernova(config, sn_type, params.z_source, rng), images, where

    galaxy = params.galaxy.magnitudes if params.galaxy is not None else None
    params.supernova, params.images, (sn_x, sn_y) = seen_supernova(config, lensed, galaxy)
    host = source_light(config, sn_x, sn_y, rng)
    offset = host.r_sersic * config.supernova.host_offset_r_sersic * math.sqrt(rng.uniform())
    host.x, host.y = _around(sn_x, sn_y, offset, rng)
    params.lensed = host


def peak_image_flux_ratio(
    sn: Supernova,
    images: LensedImages,
    config: TransientsConfig,
    background_magnitudes: np.ndarray | None = None,
) -> float:
    """Brightest flux of any image of ``sn`` at any epoch and band, in units of the flux needed
    to be seen there (> 1: seen): a ``detection_limit_mag`` source, or ``detection_contrast``
    times the galaxy beneath (``background_magnitudes`` per band) when that is more."""
    inst = config.instrument
    zero_points = np.array([b.magnitude_zero_point for b in inst.bands])
    times = np.asarray(inst.epoch_times_days(), dtype=np.float64)
    limit = 10.0 ** (-0.4 * (config.supernova.detection_limit_mag - zero_points))
    if background_magnitudes is not None and config.supernova.detection_contrast > 0:
        galaxy = 10.0 ** (-0.4 * (np.asarray(background_magnitudes) - zero_points))
        limit = np.maximum(limit, config.supernova.detection_contrast * galaxy)
    best = 0.0
    for mu, delay in zip(images.magnification, images.delay_days, strict=True):
        flux = abs(mu) * supernova_light_curve(sn, times, zero_points, delay)
        best = max(best, float(np.max(flux / limit)))
    return best


def seen_supernova(
    config: TransientsConfig,
    draw: Callable[[], SupernovaDraw],
    background_magnitudes: np.ndarray | None = None,
) -> SupernovaDraw:
    """``draw()`` until the supernova is seen (see ``SupernovaConfig.detection_limit_mag``);
    after ``max_detection_tries`` the brightest draw is kept."""
    best = draw()
    if config.supernova.detection_limit_mag is None:
        return best
    ratio = peak_image_flux_ratio(best[0], best[1], config, background_magnitudes)
    for _ in range(config.supernova.max_detection_tries - 1):
        if ratio > 1.0:
            break
        candidate = draw()
        candidate_ratio = peak_image_flux_ratio(
            candidate[0], candidate[1], config, background_magnitudes
        )
        if candidate_ratio > ratio:
            best, ratio = candidate, candidate_ratio
    return best
