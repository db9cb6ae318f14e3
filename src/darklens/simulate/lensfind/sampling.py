"""Per-image draws for lens finding. Image i's parameters depend only on (config, seed, i, label).

Every image first draws its header (seeing per band, sub-pixel centre, look-alike kind), then
*systems* — a deflector and a source behind it, weighted by the lensing cross-section, plus the
look-alike's extra components — one after another from the image's generator until one meets
the lens definition (:mod:`~darklens.simulate.lensfind.detect`, decided by the caller after
rendering). A non-lens with an elliptical (:data:`DEFLECTOR_KINDS`) keeps the deflector galaxy
and loses the source, so lens galaxies and the ellipticals of non-lenses share one population;
a disc or ring look-alike is drawn from its own population at the apparent magnitude of that
lens galaxy (a lens search's candidates are selected by brightness). Positions are arcsec from
the field centre, angles radians, magnitudes AB per band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darklens.simulate.func.cosmology import (
    comoving_distances_mpc,
    distance_modulus,
    kpc_per_arcsec,
    sis_einstein_radius_arcsec,
)
from darklens.simulate.func.population import (
    InverseCdf,
    comoving_volume_cdf,
    hyde_bernardi_absolute_magnitude_r,
    hyde_bernardi_log10_radius_kpc,
    lenspop_flattening_scale,
    lenspop_source_radius_kpc,
    schechter_magnitude_cdf,
    shen_late_type_radius,
    source_absolute_magnitude_r,
    source_magnitude,
    source_redshift,
    velocity_dispersion_cdf,
)
from darklens.simulate.lensfind.components import (
    Arcs,
    Clumps,
    Deflector,
    RingLight,
    SersicLight,
    SpiralArms,
    Stars,
    around,
    colours,
    combine_magnitudes,
    deflector_mass,
    split_magnitudes,
)
from darklens.simulate.lensfind.config import DEFLECTOR_KINDS, LOOKALIKE_KINDS, LensFindConfig

KIND_CODES = {name: code for code, name in enumerate(LOOKALIKE_KINDS)}
# σ⁴ weights the velocity-dispersion function by the SIS cross-section π θ_E² ∝ σ⁴ (D_ls/D_s)²;
# the remaining (D_ls/D_s)² is applied by rejection.
CROSS_SECTION_POWER = 4.0
# Lens-source candidates drawn per vectorised block (most fail the cross-section weighting).
_PAIR_BLOCK = 64
# Redshifts tabulated to draw a disc galaxy of a given apparent magnitude.
_DISC_Z_GRID = 1025
# Extent of a tidal arc: the configured length is ≈ its FWHM in angle.
_FWHM_PER_SIGMA = 2.3548
_BULGE_SERSIC_RANGE = (2.0, 4.0)
_BULGE_AXIS_RATIO_RANGE = (0.7, 1.0)


@dataclass
class ImageHeader:
    """What an image keeps whatever system it draws: label, look-alike kind, seeing, centre."""

    label: int
    kind: int
    seeing_fwhm_arcsec: np.ndarray  # [n_bands]
    x: float
    y: float

    @property
    def kind_name(self) -> str:
        return LOOKALIKE_KINDS[self.kind]

    @property
    def is_disc(self) -> bool:
        """Whether the image shows a disc or ring look-alike instead of the system's galaxy."""
        return self.label == 0 and self.kind_name not in DEFLECTOR_KINDS


@dataclass
class LensFindParams:
    """Everything drawn for one image; absent components are None. ``galaxy`` is the central
    elliptical, or the bulge of a disc or ring look-alike; ``z_lens`` its redshift."""

    label: int
    kind: int
    z_lens: float
    seeing_fwhm_arcsec: np.ndarray  # [n_bands]
    galaxy: SersicLight
    z_source: float = float("nan")
    velocity_dispersion_kms: float = float("nan")
    deflector: Deflector | None = None
    source: SersicLight | None = None
    source_clumps: Clumps | None = None
    companion: SersicLight | None = None
    disc: SersicLight | None = None
    arms: SpiralArms | None = None
    ring: RingLight | None = None
    clumps: Clumps | None = None
    arcs: Arcs | None = None
    stars: Stars | None = None
    lens_draws: int = 0

    @property
    def theta_e(self) -> float:
        return self.deflector.theta_e if self.deflector is not None else float("nan")

    def central_magnitudes(self) -> np.ndarray:
        """Total magnitude per band of the central object (galaxy + disc, arms, ring, knots)."""
        parts = [self.galaxy.magnitudes]
        parts += [c.magnitudes for c in (self.disc, self.arms, self.ring) if c is not None]
        if self.clumps is not None and self.disc is not None:
            parts.append(self.clumps.magnitudes)
        return combine_magnitudes(parts)

    def source_magnitudes(self) -> np.ndarray:
        """Unlensed magnitude per band of the whole source (Sérsic + clumps)."""
        parts = [self.source.magnitudes]
        if self.source_clumps is not None:
            parts.append(self.source_clumps.magnitudes)
        return combine_magnitudes(parts)


def draw_header(config: LensFindConfig, label: int, rng: np.random.Generator) -> ImageHeader:
    """Seeing per band, a sub-pixel centre and the look-alike kind, in that order."""
    inst = config.instrument
    seeing = np.array([rng.uniform(*band.seeing_fwhm_range_arcsec) for band in inst.bands])
    half_pixel = 0.5 * inst.pixel_scale_arcsec
    x0, y0 = (float(v) for v in rng.uniform(-half_pixel, half_pixel, size=2))
    looks = config.lookalikes
    fractions = looks.lens_fractions if label == 1 else looks.non_lens_fractions
    weights = np.asarray(fractions, dtype=np.float64)
    kind = int(rng.choice(len(LOOKALIKE_KINDS), p=weights / weights.sum()))
    return ImageHeader(label, kind, seeing, x0, y0)


def draw_lensfind_params(
    config: LensFindConfig, label: int, rng: np.random.Generator
) -> LensFindParams:
    """The header and the first candidate system (see :func:`draw_system`), or for a disc or
    ring look-alike the galaxy matched to it. Callers that apply the lens definition draw
    further systems with :func:`draw_system` from the same generator."""
    header = draw_header(config, label, rng)
    system = draw_system(config, header, rng)
    if not header.is_disc:
        return system
    ref = config.instrument.reference_index
    return draw_disc_lookalike(config, header, float(system.galaxy.magnitudes[ref]), rng)


# -- deflectors and sources ----------------------------------------------------------------------
def _rayleigh_axis_ratio(scale: float, minimum: float, rng: np.random.Generator) -> float:
    """q = 1 − e with e Rayleigh-distributed, redrawn below ``minimum`` (as LensPop)."""
    while True:
        q = 1.0 - rng.rayleigh(scale)
        if q >= minimum:
            return float(q)


def elliptical_galaxy(
    config: LensFindConfig, z: float, sigma_kms: float, x: float, y: float, rng
) -> SersicLight:
    """An early type of velocity dispersion σ at z (:class:`DeflectorPopulationConfig`)."""
    d = config.deflector
    absolute_r = float(hyde_bernardi_absolute_magnitude_r(sigma_kms))
    absolute_r += rng.normal(0.0, d.magnitude_scatter)
    log_r_kpc = float(hyde_bernardi_log10_radius_kpc(sigma_kms)) + rng.normal(
        0.0, d.radius_scatter_dex
    )
    r_arcsec = 10.0**log_r_kpc / kpc_per_arcsec(z, config.h0, config.omega_m)
    q = _rayleigh_axis_ratio(float(lenspop_flattening_scale(sigma_kms)), d.min_axis_ratio, rng)
    n = rng.uniform(*d.sersic_index_range)
    phi = rng.uniform(0.0, np.pi)
    terms = np.array(
        [np.interp(z, d.colour_term_redshifts, row) for row in d.colour_terms], dtype=np.float64
    )
    magnitudes = absolute_r + distance_modulus(z, config.h0, config.omega_m) + terms
    return SersicLight(x, y, r_arcsec * math.sqrt(q), n, q, phi, magnitudes)


@dataclass
class _System:
    z_lens: float
    sigma_kms: float
    z_source: float
    theta_e: float
    source_magnitude: float
    source_radius_arcsec: float


def _source_radius_arcsec(config: LensFindConfig, m: float, z: float, rng) -> float:
    """LensPop's size of a source of magnitude m at z (from its rest-frame r magnitude)."""
    absolute = source_absolute_magnitude_r(m, z, distance_modulus(z, config.h0, config.omega_m))
    r_kpc = lenspop_source_radius_kpc(absolute, z)
    r_kpc *= 10.0 ** rng.normal(0.0, config.source.radius_scatter_dex)
    r_arcsec = r_kpc / kpc_per_arcsec(z, config.h0, config.omega_m)
    return max(r_arcsec, config.source.min_radius_arcsec)


def _draw_lensing_pair(config: LensFindConfig, seeing_min: float, rng) -> tuple[_System, int]:
    """(σ, z_l) and a source, accepted with probability ∝ θ_E² (the source-plane area inside the
    Einstein radius); for ``lenspop`` also θ_E² > R² + (FWHM/2)² in the sharpest band, a
    necessary condition checked before anything is rendered. Returns the system and the number
    of cross-section-accepted systems drawn (those rejected by the seeing condition count).

    Candidates are drawn :data:`_PAIR_BLOCK` at a time (six uniforms each, the same order
    every time) and examined in order, so the result depends only on the generator."""
    d, s = config.deflector, config.source
    h0, omega_m = config.h0, config.omega_m
    sigma_cdf = velocity_dispersion_cdf(
        *d.velocity_dispersion_range_kms, CROSS_SECTION_POWER, h0 / 100.0
    )
    z_cdf = comoving_volume_cdf(*d.z_range, h0, omega_m)
    lenspop = config.lens_definition.name == "lenspop"
    systems = 0
    while True:
        u = rng.uniform(size=(6, _PAIR_BLOCK))
        sigma, z_lens = sigma_cdf(u[0]), z_cdf(u[1])
        m = source_magnitude(u[2], s.magnitude_range)
        z_source = source_redshift(u[3], u[4], m, s.z_max)
        d_s = comoving_distances_mpc(z_source, h0, omega_m)
        efficiency = np.clip(1.0 - comoving_distances_mpc(z_lens, h0, omega_m) / d_s, 0.0, 1.0)
        for k in np.flatnonzero(u[5] < efficiency**2):
            systems += 1
            zl, zs = float(z_lens[k]), float(z_source[k])
            theta_e = sis_einstein_radius_arcsec(float(sigma[k]), zl, zs, h0, omega_m)
            radius = _source_radius_arcsec(config, float(m[k]), zs, rng)
            if lenspop and theta_e**2 <= radius**2 + (seeing_min / 2.0) ** 2:
                continue
            return _System(zl, float(sigma[k]), zs, theta_e, float(m[k]), radius), systems


def _source_clumps(config: LensFindConfig, light: SersicLight, rng) -> Clumps | None:
    """Star-forming clumps of a source (``SourcePopulationConfig``), or None; ``light`` loses the
    clumps' share of its flux."""
    s = config.source
    if rng.uniform() >= s.clumpy_fraction:
        return None
    count = int(rng.integers(1, s.max_clumps + 1))
    fraction = rng.uniform(*s.clump_flux_fraction_range)
    clump_mags, light.magnitudes = split_magnitudes(light.magnitudes, fraction)
    return _clumps_in(
        light,
        count,
        s.max_clumps,
        s.clump_size_fraction_range,
        s.min_radius_arcsec,
        clump_mags,
        rng,
    )


def _clumps_in(
    light: SersicLight,
    count: int,
    slots: int,
    size_fraction: tuple[float, float],
    min_sigma: float,
    magnitudes: np.ndarray,
    rng,
) -> Clumps:
    """``count`` clumps scattered within 1.5 half-light radii of ``light`` (its shape)."""
    r_major = light.r_sersic / math.sqrt(light.q)
    xs, ys, sigma, weight = (np.zeros(slots) for _ in range(4))
    cos_phi, sin_phi = math.cos(light.phi), math.sin(light.phi)
    for k in range(count):
        radius = 1.5 * r_major * math.sqrt(rng.uniform())
        angle = rng.uniform(0.0, 2.0 * np.pi)
        u, v = radius * math.cos(angle), radius * light.q * math.sin(angle)
        xs[k] = light.x + u * cos_phi - v * sin_phi
        ys[k] = light.y + u * sin_phi + v * cos_phi
        sigma[k] = max(r_major * rng.uniform(*size_fraction), min_sigma)
        weight[k] = rng.uniform(0.5, 1.5)
    weight /= weight.sum()
    return Clumps(xs, ys, sigma, weight, magnitudes)


def lensed_source(config: LensFindConfig, system: _System, x0: float, y0: float, rng):
    """The source's light (unlensed position within ``max_offset_theta_e`` θ_E) and clumps."""
    s = config.source
    offset = system.theta_e * s.max_offset_theta_e * math.sqrt(rng.uniform())
    x, y = around(x0, y0, offset, rng)
    q = _rayleigh_axis_ratio(s.flattening_scale, s.min_axis_ratio, rng)
    n = rng.uniform(*s.sersic_index_range)
    phi = rng.uniform(0.0, np.pi)
    magnitudes = system.source_magnitude + colours(config.colours.blue_galaxy, rng)
    light = SersicLight(x, y, system.source_radius_arcsec * math.sqrt(q), n, q, phi, magnitudes)
    return light, _source_clumps(config, light, rng)


def draw_system(config: LensFindConfig, header: ImageHeader, rng) -> LensFindParams:
    """One candidate system for an image: deflector galaxy and mass, lensed source, then the
    look-alike's extra components (they are part of what the lens definition is judged on)."""
    system, systems = _draw_lensing_pair(config, float(np.min(header.seeing_fwhm_arcsec)), rng)
    galaxy = elliptical_galaxy(config, system.z_lens, system.sigma_kms, header.x, header.y, rng)
    mass = deflector_mass(config, galaxy, system.theta_e, rng)
    source, clumps = lensed_source(config, system, header.x, header.y, rng)
    params = LensFindParams(
        label=header.label,
        kind=header.kind,
        z_lens=system.z_lens,
        seeing_fwhm_arcsec=header.seeing_fwhm_arcsec,
        galaxy=galaxy,
        z_source=system.z_source,
        velocity_dispersion_kms=system.sigma_kms,
        deflector=mass,
        source=source,
        source_clumps=clumps,
        lens_draws=systems,
    )
    _add_extras(params, config, header.kind_name, rng)
    return params


def without_source(params: LensFindParams) -> LensFindParams:
    """A non-lens made from a system: the deflector galaxy and extras stay, the source goes."""
    params.deflector = None
    params.source = None
    params.source_clumps = None
    params.z_source = float("nan")
    params.velocity_dispersion_kms = float("nan")
    return params


# -- extras around an elliptical -----------------------------------------------------------------
def _background_galaxy(config: LensFindConfig, x: float, y: float, rng):
    """An unlensed galaxy of the source population (line-of-sight look-alike) and its clumps."""
    s, looks = config.source, config.lookalikes
    m = float(source_magnitude(rng.uniform(), looks.line_of_sight_magnitude_range))
    z = float(source_redshift(rng.uniform(), rng.uniform(), m, s.z_max))
    system = _System(
        float("nan"), float("nan"), z, 0.0, m, _source_radius_arcsec(config, m, z, rng)
    )
    light, clumps = lensed_source(config, system, x, y, rng)
    return light, clumps


def _add_extras(params: LensFindParams, config: LensFindConfig, kind: str, rng) -> None:
    looks = config.lookalikes
    galaxy = params.galaxy
    x0, y0 = galaxy.x, galaxy.y
    sigma = params.velocity_dispersion_kms
    if kind == "neighbour":
        where = around(x0, y0, rng.uniform(*looks.neighbour_separation_arcsec), rng)
        ratio = rng.uniform(*looks.neighbour_sigma_ratio_range)
        params.companion = elliptical_galaxy(config, params.z_lens, sigma * ratio, *where, rng)
    elif kind == "line_of_sight":
        where = around(x0, y0, rng.uniform(*looks.line_of_sight_separation_arcsec), rng)
        params.companion, params.clumps = _background_galaxy(config, *where, rng)
    elif kind == "star":
        params.stars = _stars(config, x0, y0, rng)
    elif kind == "merger":
        _add_merger(params, config, rng)


def _stars(config: LensFindConfig, x0: float, y0: float, rng) -> Stars:
    looks = config.lookalikes
    slots = looks.max_stars
    count = int(rng.integers(1, slots + 1))
    xs, ys = np.zeros(slots), np.zeros(slots)
    mags = np.full((slots, len(config.instrument.bands)), np.inf)
    for k in range(count):
        xs[k], ys[k] = around(x0, y0, rng.uniform(*looks.star_separation_arcsec), rng)
        mags[k] = rng.uniform(*looks.star_magnitude_range) + colours(config.colours.star, rng)
    return Stars(xs, ys, mags)


def _add_merger(params: LensFindParams, config: LensFindConfig, rng) -> None:
    """A partner galaxy and tidal shells or tails around the elliptical."""
    looks = config.lookalikes
    host = params.galaxy
    r_major = host.r_sersic / math.sqrt(host.q)
    where = around(
        host.x, host.y, r_major * rng.uniform(*looks.merger_separation_factor_range), rng
    )
    ratio = rng.uniform(*looks.merger_sigma_ratio_range)
    params.companion = elliptical_galaxy(
        config, params.z_lens, params.velocity_dispersion_kms * ratio, *where, rng
    )
    slots = looks.max_tidal_features
    count = int(rng.integers(1, slots + 1))
    fields = {name: np.zeros(slots) for name in ("x", "y", "radius", "width", "angle", "extent")}
    fields["q"], fields["phi"], weight = np.ones(slots), np.zeros(slots), np.zeros(slots)
    for k in range(count):
        radius = r_major * rng.uniform(*looks.tidal_radius_factor_range)
        fields["radius"][k] = radius
        fields["width"][k] = radius * rng.uniform(*looks.tidal_width_fraction_range)
        fields["extent"][k] = math.radians(rng.uniform(*looks.tidal_extent_deg_range))
        fields["extent"][k] /= _FWHM_PER_SIGMA
        direction = rng.uniform(0.0, 2.0 * np.pi)
        if rng.uniform() < 0.5:  # a shell: centred on the host, shaped like it
            fields["x"][k], fields["y"][k] = host.x, host.y
            fields["q"][k], fields["phi"][k] = host.q, host.phi
            fields["angle"][k] = direction
        else:  # a tail: a circle through the host, swept away from it
            fields["x"][k] = host.x + radius * math.cos(direction)
            fields["y"][k] = host.y + radius * math.sin(direction)
            fields["angle"][k] = direction + np.pi + rng.choice((-1.0, 1.0)) * fields["extent"][k]
        weight[k] = rng.uniform(0.5, 1.5)
    fraction = rng.uniform(*looks.tidal_flux_fraction_range)
    ref = config.instrument.reference_index
    magnitudes = host.magnitudes[ref] - 2.5 * math.log10(fraction)
    magnitudes = magnitudes + colours(config.colours.red_galaxy, rng)
    params.arcs = Arcs(**fields, weight=weight / weight.sum(), magnitudes=magnitudes)


# -- disc and ring galaxies ----------------------------------------------------------------------
def _disc_axis_ratio(config: LensFindConfig, cos_range: tuple[float, float], rng) -> float:
    """Projected axis ratio of a disc: q² = cos² i + q0² sin² i, cos i uniform in the range."""
    cos_i = rng.uniform(*cos_range)
    q0 = rng.uniform(*config.lookalikes.disc_thickness_range)
    return math.sqrt(cos_i**2 + q0**2 * (1.0 - cos_i**2))


def _disc_redshift_and_magnitude(config: LensFindConfig, target: float, rng) -> tuple[float, float]:
    """(z, M_r) of a disc galaxy of reference-band magnitude ``target``: redshift and luminosity
    follow the disc population at that magnitude, p(z | m) ∝ dV/dz φ(M(m, z)) on a grid of
    redshifts. A magnitude no disc of the population reaches within ``disc_z_range`` takes the
    redshift whose M comes nearest, M clipped to ``disc_absolute_magnitude_range``."""
    looks, d = config.lookalikes, config.deflector
    ref = config.instrument.reference_index
    h0, omega_m = config.h0, config.omega_m
    z = np.linspace(*looks.disc_z_range, _DISC_Z_GRID)
    d_c = comoving_distances_mpc(z, h0, omega_m)
    modulus = 5.0 * np.log10((1.0 + z) * d_c * 1e5)  # D_L in units of 10 pc
    absolute = target - modulus - 0.5 * np.interp(z, d.colour_term_redshifts, d.colour_terms[ref])
    lf = schechter_magnitude_cdf(*looks.disc_absolute_magnitude_range, h0 / 100.0)
    phi = np.interp(
        absolute, 0.5 * (lf.values[1:] + lf.values[:-1]), np.diff(lf.cdf) / np.diff(lf.values)
    )
    low, high = looks.disc_absolute_magnitude_range
    weight = np.where((absolute >= low) & (absolute <= high), phi, 0.0)
    weight *= d_c**2 / np.sqrt(omega_m * (1.0 + z) ** 3 + 1.0 - omega_m)  # dV/dz
    u = rng.uniform()
    if not weight.any():
        k = int(np.argmin(np.abs(np.clip(absolute, low, high) - absolute)))
        return float(z[k]), float(np.clip(absolute[k], low, high))
    table = InverseCdf.from_density(z, weight)
    chosen = float(table(u))
    return chosen, float(np.interp(chosen, z, absolute))


def draw_disc_lookalike(
    config: LensFindConfig, header: ImageHeader, target_magnitude: float, rng
) -> LensFindParams:
    """A spiral, edge-on or ring galaxy from the disc population (:class:`LookalikeConfig`)
    whose disc, bulge and arms or ring together have about ``target_magnitude`` in the reference
    band (the lens galaxy of a system drawn for the same image: as bright as lens candidates)."""
    looks = config.lookalikes
    kind = header.kind_name
    z, absolute_r = _disc_redshift_and_magnitude(config, target_magnitude, rng)
    median_kpc, scatter_ln = shen_late_type_radius(absolute_r)
    r50_kpc = median_kpc * math.exp(rng.normal(0.0, scatter_ln)) * (1.0 + z) ** -0.75
    kpc = kpc_per_arcsec(z, config.h0, config.omega_m)
    r50 = r50_kpc / kpc
    if kind == "edge_on":
        cos_range = (0.0, math.cos(math.radians(looks.edge_on_min_inclination_deg)))
    else:
        cos_range = (math.cos(math.radians(looks.spiral_max_inclination_deg)), 1.0)
    q = _disc_axis_ratio(config, cos_range, rng)
    phi = rng.uniform(0.0, np.pi)
    bulge_range = looks.ring_bulge_fraction_range if kind == "ring" else looks.bulge_fraction_range
    bulge_fraction = rng.uniform(*bulge_range)
    d = config.deflector
    old = np.array([np.interp(z, d.colour_term_redshifts, row) for row in d.colour_terms])
    base = absolute_r + distance_modulus(z, config.h0, config.omega_m)
    # Discs: about half an old population's K-correction and colours (Fukugita et al. 1995).
    disc_mags = base - 2.5 * math.log10(1.0 - bulge_fraction) + 0.5 * old
    bulge_r = r50 * rng.uniform(*looks.bulge_radius_fraction_range)
    bulge_q = rng.uniform(*_BULGE_AXIS_RATIO_RANGE)
    bulge = SersicLight(
        header.x,
        header.y,
        bulge_r * math.sqrt(bulge_q),
        rng.uniform(*_BULGE_SERSIC_RANGE),
        bulge_q,
        phi,
        base - 2.5 * math.log10(bulge_fraction) + old,
    )
    disc = SersicLight(header.x, header.y, r50 * math.sqrt(q), 1.0, q, phi, disc_mags)
    params = LensFindParams(
        label=header.label,
        kind=header.kind,
        z_lens=z,
        seeing_fwhm_arcsec=header.seeing_fwhm_arcsec,
        galaxy=bulge,
        disc=disc,
    )
    clump_sigma = max(rng.uniform(*looks.clump_radius_kpc_range) / kpc, _min_clump_sigma(config))
    if kind == "spiral":
        _add_arms(params, config, r50, clump_sigma, rng)
    elif kind == "ring":
        _add_ring(params, config, r50, clump_sigma, rng)
    return params


def _min_clump_sigma(config: LensFindConfig) -> float:
    """Half a rendering sub-pixel: smaller Gaussians would be sampled by too few points."""
    inst = config.instrument
    return 0.5 * inst.pixel_scale_arcsec / inst.supersampling


def _blue_part(config: LensFindConfig, magnitudes: np.ndarray, rng) -> np.ndarray:
    """Magnitudes of a star-forming part: its reference-band magnitude, blue colours."""
    ref = config.instrument.reference_index
    return magnitudes[ref] + colours(config.colours.blue_galaxy, rng)


def _add_arms(params: LensFindParams, config: LensFindConfig, r50: float, sigma: float, rng):
    """Blue logarithmic arms (a share of the disc light) with star-forming clumps on them."""
    looks = config.lookalikes
    disc = params.disc
    arm_mags, disc.magnitudes = split_magnitudes(
        disc.magnitudes, rng.uniform(*looks.arm_fraction_range)
    )
    arm_mags = _blue_part(config, arm_mags, rng)
    n_arms = int(rng.integers(2, 4))
    pitch = math.radians(rng.uniform(*looks.arm_pitch_deg_range))
    phase = rng.uniform(0.0, 2.0 * np.pi)
    clump_mags, arm_mags = split_magnitudes(arm_mags, rng.uniform(*looks.arm_clump_fraction_range))
    params.arms = SpiralArms(n_arms, pitch, phase, arm_mags)
    count = int(rng.integers(3, looks.max_knots + 1))
    radii = r50 * rng.uniform(0.5, 2.0, size=count)
    arm_index = rng.integers(0, n_arms, size=count)
    angles = phase + np.log(radii / r50) / math.tan(pitch) + 2.0 * np.pi * arm_index / n_arms
    params.clumps = _clumps_on_disc(disc, radii, angles, sigma, looks.max_knots, clump_mags, rng)


def _add_ring(params: LensFindParams, config: LensFindConfig, r50: float, sigma: float, rng):
    """A blue ring (a share of the disc light) with star-forming knots along it."""
    looks = config.lookalikes
    disc = params.disc
    ring_mags, disc.magnitudes = split_magnitudes(
        disc.magnitudes, rng.uniform(*looks.ring_flux_fraction_range)
    )
    ring_mags = _blue_part(config, ring_mags, rng)
    knot_mags, ring_mags = split_magnitudes(ring_mags, rng.uniform(*looks.ring_knot_fraction_range))
    radius = r50 * rng.uniform(*looks.ring_radius_factor_range)
    width = radius * rng.uniform(*looks.ring_width_fraction_range)
    params.ring = RingLight(disc.x, disc.y, radius, width, disc.q, disc.phi, ring_mags)
    count = int(rng.integers(3, looks.max_knots + 1))
    angles = rng.uniform(0.0, 2.0 * np.pi, size=count)
    radii = np.full(count, radius)
    params.clumps = _clumps_on_disc(disc, radii, angles, sigma, looks.max_knots, knot_mags, rng)


def _clumps_on_disc(disc: SersicLight, radii, angles, sigma, slots, magnitudes, rng) -> Clumps:
    """Clumps at (deprojected radius, angle) in a disc's plane, projected with its q and phi."""
    count = len(radii)
    u = radii * np.cos(angles)
    v = radii * np.sin(angles) * disc.q
    cos_phi, sin_phi = math.cos(disc.phi), math.sin(disc.phi)
    xs, ys, sig, weight = (np.zeros(slots) for _ in range(4))
    xs[:count] = disc.x + u * cos_phi - v * sin_phi
    ys[:count] = disc.y + u * sin_phi + v * cos_phi
    sig[:count] = sigma * rng.uniform(0.7, 1.4, size=count)
    weight[:count] = rng.uniform(0.5, 1.5, size=count)
    return Clumps(xs, ys, sig, weight / weight.sum(), magnitudes)
