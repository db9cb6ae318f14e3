"""Per-image draws for lens finding. Image i's parameters depend only on (config, seed, i, label).

Every image draws the same lens-galaxy quantities first and in the same order (seeing, centre,
redshifts, θ_E, light, mass), so lenses and non-lenses share one galaxy population; what follows
depends on the label and the look-alike kind. Positions are arcsec from the field centre, position
angles radians, magnitudes AB per band (``np.inf`` for an empty star slot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darklens.simulate.func.cosmology import (
    distance_modulus,
    kpc_per_arcsec,
    sis_velocity_dispersion_kms,
)
from darklens.simulate.lensfind.config import LOOKALIKE_KINDS, LensFindConfig

KIND_CODES = {name: code for code, name in enumerate(LOOKALIKE_KINDS)}
# The largest SIE axis ratio drawn: caustics' SIE formula loses precision as q → 1 in float32.
_MAX_MASS_AXIS_RATIO = 0.98
_MIN_MASS_AXIS_RATIO = 0.2


@dataclass
class SersicLight:
    """Elliptical Sérsic: R_sersic in lenstronomy's convention (product-average radius)."""

    x: float
    y: float
    r_sersic: float
    n: float
    q: float
    phi: float
    magnitudes: np.ndarray


@dataclass
class SpiralArms:
    """Logarithmic spiral modulation of a disc: I → I·[(1−a) + a·((1+cos Θ)/2)²/(3/8)],
    Θ = m(φ − phase) − (m / tan pitch)·ln(r / R), in the disc's deprojected coordinates."""

    amplitude: float
    n_arms: int
    pitch_rad: float
    phase_rad: float


@dataclass
class RingLight:
    """Gaussian annulus in elliptical radius e (major axis): I ∝ exp(−(e − radius)² / 2 width²)."""

    x: float
    y: float
    radius: float
    width: float
    q: float
    phi: float
    magnitudes: np.ndarray


@dataclass
class Deflector:
    """SIE (lenstronomy θ_E, axis ratio, angle) plus external shear about the same centre."""

    x: float
    y: float
    theta_e: float
    q: float
    phi: float
    gamma1: float
    gamma2: float


@dataclass
class Stars:
    x: np.ndarray  # [K]
    y: np.ndarray
    magnitudes: np.ndarray  # [K, n_bands]; inf where the slot is empty


@dataclass
class LensFindParams:
    """Everything drawn for one image; absent components are None."""

    label: int
    kind: int
    z_lens: float
    seeing_fwhm_arcsec: np.ndarray  # [n_bands]
    galaxy: SersicLight  # central elliptical, or the bulge / core of a look-alike
    z_source: float = float("nan")
    velocity_dispersion_kms: float = float("nan")
    deflector: Deflector | None = None
    source: SersicLight | None = None
    companion: SersicLight | None = None
    disc: SersicLight | None = None
    arms: SpiralArms | None = None
    ring: RingLight | None = None
    stars: Stars | None = None

    @property
    def theta_e(self) -> float:
        return self.deflector.theta_e if self.deflector is not None else float("nan")

    def central_magnitudes(self) -> np.ndarray:
        """Total magnitude per band of the central object (galaxy + disc or ring)."""
        parts = [self.galaxy.magnitudes]
        parts += [c.magnitudes for c in (self.disc, self.ring) if c is not None]
        return combine_magnitudes(parts)


def combine_magnitudes(parts: list[np.ndarray]) -> np.ndarray:
    flux = sum(10.0 ** (-0.4 * np.asarray(m)) for m in parts)
    return -2.5 * np.log10(flux)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _colours(table: tuple[tuple[float, float], ...], rng: np.random.Generator) -> np.ndarray:
    """m_band − m_ref for one object at a random position t ~ U(0, 1) along the sequence."""
    ends = np.asarray(table, dtype=np.float64)
    return ends[:, 0] + rng.uniform() * (ends[:, 1] - ends[:, 0])


def _around(x: float, y: float, radius: float, rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return x + radius * math.cos(angle), y + radius * math.sin(angle)


def elliptical_light(
    config: LensFindConfig, z: float, sigma_kms: float, x: float, y: float, rng: np.random.Generator
) -> SersicLight:
    """An early-type galaxy of velocity dispersion σ at redshift z (see DeflectorConfig)."""
    d = config.deflector
    log_sigma = math.log10(sigma_kms / 200.0)
    absolute = d.absolute_magnitude_at_200kms - 10.0 * log_sigma
    absolute += rng.normal(0.0, d.magnitude_scatter)
    m_ref = absolute + distance_modulus(z, config.h0, config.omega_m)
    m_ref += d.k_correction_mag_per_z * z
    log_r_kpc = d.log10_r_sersic_kpc_at_200kms + d.r_sersic_sigma_slope * log_sigma
    log_r_kpc += rng.normal(0.0, d.r_sersic_scatter_dex)
    r_sersic = 10.0**log_r_kpc / kpc_per_arcsec(z, config.h0, config.omega_m)
    n = rng.uniform(*d.sersic_index_range)
    q = rng.uniform(*d.axis_ratio_range)
    phi = rng.uniform(0.0, np.pi)
    magnitudes = m_ref + _colours(config.colours.red_galaxy, rng)
    return SersicLight(x, y, r_sersic, n, q, phi, magnitudes)


def source_light(
    config: LensFindConfig, x: float, y: float, rng: np.random.Generator
) -> SersicLight:
    """A galaxy of the background-source population (unlensed magnitudes)."""
    s = config.source
    m_ref = rng.uniform(*s.magnitude_range)
    r_sersic = _log_uniform(rng, *s.r_sersic_range_arcsec)
    n = rng.uniform(*s.sersic_index_range)
    q = rng.uniform(*s.axis_ratio_range)
    phi = rng.uniform(0.0, np.pi)
    magnitudes = m_ref + _colours(config.colours.blue_galaxy, rng)
    return SersicLight(x, y, r_sersic, n, q, phi, magnitudes)


def deflector_mass(
    config: LensFindConfig, galaxy: SersicLight, theta_e: float, rng: np.random.Generator
) -> Deflector:
    """The SIE + shear of a lens galaxy: centred on its light, axis ratio and angle scattered
    about the light's (DeflectorConfig), shear uniform in [0, shear_max] at a random angle."""
    d = config.deflector
    q = galaxy.q + rng.normal(0.0, d.mass_axis_ratio_scatter)
    q = float(np.clip(q, _MIN_MASS_AXIS_RATIO, _MAX_MASS_AXIS_RATIO))
    phi = galaxy.phi + math.radians(rng.normal(0.0, d.mass_angle_scatter_deg))
    shear = rng.uniform(0.0, d.shear_max)
    shear_angle = rng.uniform(0.0, np.pi)
    gamma1 = shear * math.cos(2.0 * shear_angle)
    gamma2 = shear * math.sin(2.0 * shear_angle)
    return Deflector(galaxy.x, galaxy.y, theta_e, q, phi, gamma1, gamma2)


def draw_lensfind_params(
    config: LensFindConfig, label: int, rng: np.random.Generator
) -> LensFindParams:
    """Draw one image's parameters in a fixed order (so draws never shift between versions)."""
    inst = config.instrument
    seeing = np.array([rng.uniform(*band.seeing_fwhm_range_arcsec) for band in inst.bands])
    half_pixel = 0.5 * inst.pixel_scale_arcsec
    x0, y0 = (float(v) for v in rng.uniform(-half_pixel, half_pixel, size=2))
    d, s = config.deflector, config.source
    z_lens = rng.uniform(*d.z_range)
    # The source redshift also sets a non-lens's velocity dispersion (its galaxy's "θ_E").
    z_source = rng.uniform(max(s.z_range[0], z_lens + s.min_redshift_gap), s.z_range[1])
    theta_e = _log_uniform(rng, *d.theta_e_range_arcsec)
    sigma = sis_velocity_dispersion_kms(theta_e, z_lens, z_source, config.h0, config.omega_m)
    galaxy = elliptical_light(config, z_lens, sigma, x0, y0, rng)
    mass = deflector_mass(config, galaxy, theta_e, rng)
    looks = config.lookalikes
    fractions = looks.lens_fractions if label == 1 else looks.non_lens_fractions
    weights = np.asarray(fractions, dtype=np.float64)
    kind = int(rng.choice(len(LOOKALIKE_KINDS), p=weights / weights.sum()))
    params = LensFindParams(label, kind, z_lens, seeing, galaxy)
    if label == 1:
        offset = theta_e * s.max_offset_theta_e * math.sqrt(rng.uniform())
        params.source = source_light(config, *_around(x0, y0, offset, rng), rng)
        params.deflector = mass
        params.z_source = z_source
        params.velocity_dispersion_kms = sigma
    _add_lookalike(params, config, LOOKALIKE_KINDS[kind], sigma, rng)
    return params


def _add_lookalike(
    params: LensFindParams, config: LensFindConfig, kind: str, sigma: float, rng
) -> None:
    looks = config.lookalikes
    galaxy = params.galaxy
    x0, y0 = galaxy.x, galaxy.y
    if kind == "neighbour":
        where = _around(x0, y0, rng.uniform(*looks.neighbour_separation_arcsec), rng)
        ratio = rng.uniform(*looks.neighbour_sigma_ratio_range)
        params.companion = elliptical_light(config, params.z_lens, sigma * ratio, *where, rng)
    elif kind == "line_of_sight":
        where = _around(x0, y0, rng.uniform(*looks.line_of_sight_separation_arcsec), rng)
        params.companion = source_light(config, *where, rng)
    elif kind in ("spiral", "edge_on"):
        _make_disc_galaxy(params, config, spiral=kind == "spiral", rng=rng)
    elif kind == "ring":
        ring_fraction = rng.uniform(*looks.ring_flux_fraction_range)
        radius = rng.uniform(*looks.ring_radius_arcsec)
        width = radius * rng.uniform(*looks.ring_width_fraction_range)
        q = rng.uniform(*looks.ring_axis_ratio_range)
        phi = rng.uniform(0.0, np.pi)
        m_ref = galaxy.magnitudes[config.instrument.reference_index]
        ring_mags = m_ref - 2.5 * math.log10(ring_fraction)
        ring_mags = ring_mags + _colours(config.colours.blue_galaxy, rng)
        params.ring = RingLight(x0, y0, radius, width, q, phi, ring_mags)
        galaxy.magnitudes = galaxy.magnitudes - 2.5 * math.log10(1.0 - ring_fraction)
    elif kind == "star":
        slots = looks.max_stars
        count = int(rng.integers(1, slots + 1))
        xs, ys = np.zeros(slots), np.zeros(slots)
        mags = np.full((slots, len(config.instrument.bands)), np.inf)
        for k in range(count):
            xs[k], ys[k] = _around(x0, y0, rng.uniform(*looks.star_separation_arcsec), rng)
            mags[k] = rng.uniform(*looks.star_magnitude_range) + _colours(config.colours.star, rng)
        params.stars = Stars(xs, ys, mags)


def _make_disc_galaxy(params: LensFindParams, config: LensFindConfig, spiral: bool, rng) -> None:
    """Turn the central elliptical into a bulge plus a (spiral or edge-on) exponential disc."""
    looks = config.lookalikes
    galaxy = params.galaxy
    bulge_fraction = rng.uniform(*looks.bulge_fraction_range)
    disc_r = galaxy.r_sersic * rng.uniform(*looks.disc_size_factor_range)
    axis_range = looks.disc_axis_ratio_range if spiral else looks.edge_on_axis_ratio_range
    disc_q = rng.uniform(*axis_range)
    disc_phi = rng.uniform(0.0, np.pi)
    m_ref = galaxy.magnitudes[config.instrument.reference_index]
    disc_mags = m_ref - 2.5 * math.log10(1.0 - bulge_fraction)
    disc_mags = disc_mags + _colours(config.colours.blue_galaxy, rng)
    params.disc = SersicLight(galaxy.x, galaxy.y, disc_r, 1.0, disc_q, disc_phi, disc_mags)
    galaxy.r_sersic *= rng.uniform(*looks.bulge_size_factor_range)
    galaxy.magnitudes = galaxy.magnitudes - 2.5 * math.log10(bulge_fraction)
    if spiral:
        params.arms = SpiralArms(
            amplitude=rng.uniform(*looks.arm_amplitude_range),
            n_arms=int(rng.integers(2, 4)),
            pitch_rad=math.radians(rng.uniform(*looks.arm_pitch_deg_range)),
            phase_rad=rng.uniform(0.0, 2.0 * np.pi),
        )
