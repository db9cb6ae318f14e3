"""Frozen settings for the lens-finding simulator (lenses vs non-lenses and look-alikes).

Units are in the field names: angles in arcsec, magnitudes AB, times in seconds, velocities in
km/s. A ``*_range`` is a (low, high) pair drawn uniformly per image unless its docstring says
log-uniform. Colours are per band: ``m_band − m_reference`` at the two ends of a colour sequence;
each object draws one position t ~ U(0, 1) along it, so its colours move together in all bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from darklens.config import Config, require, require_range
from darklens.simulate.instrument import CCDBand, SurveyBands, check_survey_grid

CLASS_NAMES = ("non_lens", "lens")
# Look-alike codes stored in the truth column ``lookalike_kind`` (the table goes in the manifest).
LOOKALIKE_KINDS = (
    "none",
    "neighbour",
    "line_of_sight",
    "star",
    "spiral",
    "edge_on",
    "ring",
    "merger",
    "undetectable_lens",
)
# Kinds a lens cannot have: a disc or ring galaxy replaces the elliptical deflector, a merger's
# tidal features are a non-lens's arcs, and an undetectable lens is by definition no lens.
NON_LENS_ONLY_KINDS = ("spiral", "edge_on", "ring", "merger", "undetectable_lens")
# Kinds whose central galaxy is a deflector drawn like a lens's (matched populations).
DEFLECTOR_KINDS = ("none", "neighbour", "line_of_sight", "star", "merger", "undetectable_lens")
LENS_DEFINITIONS = ("lenspop", "challenge2", "any")

Range = tuple[float, float]
ColourTable = tuple[tuple[float, float], ...]


# -- checks shared with the lensed-transient simulator's configs --------------------------------
def check_colour_tables(config: Any) -> None:
    """Cosmology and one colour pair per band (zero in the reference band) for a config with
    ``instrument``, ``colours``, ``h0`` and ``omega_m``."""
    require(config.h0 > 0 and 0 < config.omega_m <= 1, "need h0 > 0 and 0 < omega_m <= 1")
    n_bands = len(config.instrument.bands)
    ref = config.instrument.reference_index
    for name in ("red_galaxy", "blue_galaxy", "star"):
        table = getattr(config.colours, name)
        require(
            len(table) == n_bands,
            f"colours.{name} has {len(table)} entries but instrument.bands has {n_bands}: "
            "give one (t=0, t=1) pair per band",
        )
        require(
            tuple(table[ref]) == (0.0, 0.0),
            f"colours.{name}: the reference band {config.instrument.reference_band!r} must "
            f"have colour (0, 0), got {tuple(table[ref])}",
        )


def check_galaxy_population(config: Any) -> None:
    """:func:`check_colour_tables` plus source redshifts beyond the deflectors', for a config with
    ``source`` (:class:`LensedSourceConfig`) and ``deflector`` (:class:`DeflectorConfig`)."""
    check_colour_tables(config)
    require(
        config.source.z_range[1] > config.deflector.z_range[1] + config.source.min_redshift_gap,
        "source.z_range must reach beyond the deflector's highest redshift + "
        "source.min_redshift_gap",
    )


@dataclass(frozen=True)
class BandConfig(CCDBand):
    """One filter: seeing drawn per image in ``seeing_fwhm_range_arcsec``, a fixed sky (mag/arcsec²)
    and lenstronomy's CCD noise terms (:class:`CCDBand`)."""

    name: str = "r"
    exposure_time_s: float = 360.0
    num_exposures: int = 5
    magnitude_zero_point: float = 25.59
    read_noise_e: float = 5.0
    ccd_gain: float = 2.5
    seeing_fwhm_range_arcsec: Range = (0.6, 0.8)
    sky_brightness_mag_arcsec2: float = 21.1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_range(f"band {self.name}: seeing_fwhm_range_arcsec", self.seeing_fwhm_range_arcsec)
        require(
            self.seeing_fwhm_range_arcsec[0] > 0,
            f"band {self.name}: seeing FWHM must be positive",
        )


@dataclass(frozen=True)
class SurveyConfig(SurveyBands, Config):
    """Cutout grid, bands and noise. Images are in e-/s per pixel (each band its zero point).

    ``supersampling``: surface brightness is evaluated on an s×s sub-grid per pixel and averaged
    before the PSF, as lenstronomy's ``supersampling_factor`` (with ``supersampling_convolution``
    off). ``noise``: ``ccd`` (lenstronomy's background + Poisson model) or ``none``.
    """

    name: str = "kids"
    num_pix: int = 101
    pixel_scale_arcsec: float = 0.2
    bands: tuple[BandConfig, ...] = (BandConfig(),)
    reference_band: str = "r"
    psf_truncation_sigma: float = 5.0
    supersampling: int = 2
    noise: str = "ccd"

    def __post_init__(self) -> None:
        check_survey_grid(self, max_num_pix=1024)


@dataclass(frozen=True)
class DeflectorConfig(Config):
    """A simple lens-galaxy population (the lensed-transient simulator's; lens finding uses
    :class:`DeflectorPopulationConfig`).

    θ_E is log-uniform in ``theta_e_range_arcsec``; with the redshifts it fixes the SIS velocity
    dispersion σ. The light follows σ: M_ref = ``absolute_magnitude_at_200kms`` − 10 log10(σ/200)
    (Faber–Jackson, L ∝ σ⁴) plus scatter; apparent m = M + distance modulus +
    ``k_correction_mag_per_z``·z (a linear K-correction + evolution term); log10(R_sersic/kpc) =
    ``log10_r_sersic_kpc_at_200kms`` + ``r_sersic_sigma_slope``·log10(σ/200) plus scatter.
    The SIE shares the light's orientation and axis ratio up to the given scatters.
    """

    z_range: Range = (0.2, 0.8)
    theta_e_range_arcsec: Range = (0.5, 3.0)
    absolute_magnitude_at_200kms: float = -22.0
    magnitude_scatter: float = 0.4
    k_correction_mag_per_z: float = 1.0
    log10_r_sersic_kpc_at_200kms: float = 0.55
    r_sersic_sigma_slope: float = 2.0
    r_sersic_scatter_dex: float = 0.15
    sersic_index_range: Range = (3.0, 5.0)
    axis_ratio_range: Range = (0.5, 0.95)
    mass_axis_ratio_scatter: float = 0.1
    mass_angle_scatter_deg: float = 10.0
    shear_max: float = 0.1

    def __post_init__(self) -> None:
        require_range("deflector.z_range", self.z_range, low=1e-3)
        require_range("deflector.theta_e_range_arcsec", self.theta_e_range_arcsec, low=1e-3)
        require_range("deflector.sersic_index_range", self.sersic_index_range, 0.3, 8.0)
        require_range("deflector.axis_ratio_range", self.axis_ratio_range, 0.05, 1.0)
        require(
            self.magnitude_scatter >= 0 and self.r_sersic_scatter_dex >= 0,
            "deflector scatters must be >= 0",
        )
        require(self.mass_axis_ratio_scatter >= 0, "deflector.mass_axis_ratio_scatter must be >= 0")
        require(0 <= self.shear_max < 0.5, "deflector.shear_max must be in [0, 0.5)")


@dataclass(frozen=True)
class LensedSourceConfig(Config):
    """Simple background Sérsic sources (the lensed-transient simulator's; lens finding uses
    :class:`SourcePopulationConfig`).

    Redshift z_s ~ U(max(low, z_l + ``min_redshift_gap``), high); R_sersic log-uniform; the
    unlensed position uniform over the disc of radius ``max_offset_theta_e``·θ_E around the lens.
    """

    z_range: Range = (1.0, 3.0)
    min_redshift_gap: float = 0.2
    magnitude_range: Range = (21.0, 28.0)
    r_sersic_range_arcsec: Range = (0.08, 0.5)
    sersic_index_range: Range = (0.5, 1.5)
    axis_ratio_range: Range = (0.3, 1.0)
    max_offset_theta_e: float = 1.0

    def __post_init__(self) -> None:
        require_range("source.z_range", self.z_range, low=1e-3)
        require(self.min_redshift_gap > 0, "source.min_redshift_gap must be positive")
        require_range("source.magnitude_range", self.magnitude_range)
        require_range("source.r_sersic_range_arcsec", self.r_sersic_range_arcsec, low=1e-3)
        require_range("source.sersic_index_range", self.sersic_index_range, 0.3, 8.0)
        require_range("source.axis_ratio_range", self.axis_ratio_range, 0.05, 1.0)
        require(self.max_offset_theta_e >= 0, "source.max_offset_theta_e must be >= 0")


@dataclass(frozen=True)
class DeflectorPopulationConfig(Config):
    """Lens galaxies, and the ellipticals of non-lenses, as Collett (2015, ApJ 811, 20) and his
    LensPop code draw them (:mod:`darklens.simulate.func.population`).

    - velocity dispersion σ from the Choi, Park & Vogeley (2007) function in
      ``velocity_dispersion_range_kms`` (LensPop: 100–400 km/s), redshift uniform in comoving
      volume in ``z_range`` (LensPop: z < 2, no evolution of the function); a lens is weighted by
      its cross-section π θ_E² (θ_E of the SIS of σ), its source drawn within θ_E;
    - light: Sérsic (``sersic_index_range``; LensPop: n = 4) of rest-frame r absolute magnitude
      M_r(σ) from Hyde & Bernardi (2009) with ``magnitude_scatter`` mag (LensPop's 0.15/2.4),
      half-light radius log10 R(σ) from the same paper with ``radius_scatter_dex`` (0.11);
      apparent magnitude in band b: M_r + distance modulus + ``colour_terms[b]`` at z, the terms
      (m_b − M_r − DM, i.e. K-correction and colour of a 10 Gyr old population) tabulated at
      ``colour_term_redshifts`` (see the presets for their sources);
    - axis ratio q = 1 − e, e Rayleigh-distributed with scale 0.378 − 0.000572 σ, q ≥
      ``min_axis_ratio`` (LensPop); the SIE follows the light's q and angle up to the scatters
      (mass and light are aligned to ≈ 10°, Koopmans et al. 2006, ApJ 649, 599);
    - external shear uniform in [0, ``shear_max``] at a random angle (typical galaxy-scale shears
      are 0.05–0.1, Keeton, Kochanek & Seljak 1997, ApJ 482, 604).
    """

    z_range: Range = (0.05, 2.0)
    velocity_dispersion_range_kms: Range = (100.0, 400.0)
    magnitude_scatter: float = 0.0625
    radius_scatter_dex: float = 0.11
    sersic_index_range: Range = (4.0, 4.0)
    min_axis_ratio: float = 0.2
    mass_axis_ratio_scatter: float = 0.1
    mass_angle_scatter_deg: float = 10.0
    shear_max: float = 0.1
    colour_term_redshifts: tuple[float, ...] = (0.0, 2.0)
    colour_terms: tuple[tuple[float, ...], ...] = ((0.0, 0.0),)

    def __post_init__(self) -> None:
        require_range("deflector.z_range", self.z_range, low=1e-3)
        require_range(
            "deflector.velocity_dispersion_range_kms", self.velocity_dispersion_range_kms, 50, 500
        )
        require_range("deflector.sersic_index_range", self.sersic_index_range, 0.3, 8.0)
        require(
            self.magnitude_scatter >= 0 and self.radius_scatter_dex >= 0,
            "deflector scatters must be >= 0",
        )
        require(0.05 <= self.min_axis_ratio < 1, "deflector.min_axis_ratio must be in [0.05, 1)")
        require(self.mass_axis_ratio_scatter >= 0, "deflector.mass_axis_ratio_scatter must be >= 0")
        require(0 <= self.shear_max < 0.5, "deflector.shear_max must be in [0, 0.5)")
        grid = self.colour_term_redshifts
        require(
            len(grid) >= 2 and all(b > a for a, b in zip(grid[:-1], grid[1:], strict=True)),
            "deflector.colour_term_redshifts must hold at least two increasing redshifts",
        )
        for band, terms in enumerate(self.colour_terms):
            require(
                len(terms) == len(grid),
                f"deflector.colour_terms[{band}] has {len(terms)} values for "
                f"{len(grid)} colour_term_redshifts",
            )


@dataclass(frozen=True)
class SourcePopulationConfig(Config):
    """Background sources (and the unlensed line-of-sight galaxies), as LensPop's.

    - reference-band magnitude from the galaxy counts N(< m) ∝ 10^(0.31 m) in
      ``magnitude_range`` (LSST Science Book eq. 3.7, measured in i; VIS ≈ i for these blue
      sources; LensPop's simulated catalogue follows it to i ≈ 26 and holds 40 % fewer sources
      at i < 28), redshift below ``z_max`` from the per-magnitude distribution implied by its
      eq. 3.8 (``func.population.source_redshift_mixture``: median z ≈ 1.1 at i = 25);
    - exponential-like Sérsic (``sersic_index_range``; LensPop: n = 1), half-light radius from
      LensPop's relation 10^(−(M_r + 18)/4) ((1 + z)/1.6)^−1.2 kpc with ``radius_scatter_dex``
      (0.35), M_r the rest-frame r magnitude from m and z (flat-f_ν K-correction plus the
      median rest-r offset of LensPop's source catalogue), at least ``min_radius_arcsec``;
    - axis ratio 1 − e, e Rayleigh with scale ``flattening_scale`` (0.3), q ≥ ``min_axis_ratio``;
    - position uniform within ``max_offset_theta_e`` · θ_E of the lens (LensPop: the source's
      centre inside the Einstein radius);
    - a ``clumpy_fraction`` of sources carry 1..``max_clumps`` Gaussian star-forming clumps
      holding ``clump_flux_fraction_range`` of the flux, each of σ = ``clump_size_fraction_range``
      × R (clumpy galaxies are ≈ 60 % of star-forming galaxies at z ≈ 2, Guo et al. 2015, ApJ
      800, 39; lensed arcs are knotty too, so knots alone do not tell a ring galaxy from a lens).
    """

    magnitude_range: Range = (20.0, 28.0)
    z_max: float = 6.0
    radius_scatter_dex: float = 0.35
    min_radius_arcsec: float = 0.02
    sersic_index_range: Range = (1.0, 1.0)
    flattening_scale: float = 0.3
    min_axis_ratio: float = 0.2
    max_offset_theta_e: float = 1.0
    clumpy_fraction: float = 0.5
    max_clumps: int = 4
    clump_flux_fraction_range: Range = (0.1, 0.4)
    clump_size_fraction_range: Range = (0.15, 0.35)

    def __post_init__(self) -> None:
        require_range("source.magnitude_range", self.magnitude_range, 10.0, 35.0)
        require(self.z_max > 0.1, "source.z_max must be > 0.1")
        require(self.radius_scatter_dex >= 0, "source.radius_scatter_dex must be >= 0")
        require(self.min_radius_arcsec > 0, "source.min_radius_arcsec must be positive")
        require_range("source.sersic_index_range", self.sersic_index_range, 0.3, 8.0)
        require(0 < self.flattening_scale < 1, "source.flattening_scale must be in (0, 1)")
        require(0.05 <= self.min_axis_ratio < 1, "source.min_axis_ratio must be in [0.05, 1)")
        require(self.max_offset_theta_e > 0, "source.max_offset_theta_e must be positive")
        require(0 <= self.clumpy_fraction <= 1, "source.clumpy_fraction must be in [0, 1]")
        require(1 <= self.max_clumps <= 16, "source.max_clumps must be in 1..16")
        require_range("source.clump_flux_fraction_range", self.clump_flux_fraction_range, 0, 0.95)
        require_range("source.clump_size_fraction_range", self.clump_size_fraction_range, 0.01, 1)


@dataclass(frozen=True)
class LensDefinitionConfig(Config):
    """Which simulated systems count as lenses (:mod:`darklens.simulate.lensfind.detect`).

    - ``lenspop`` (Collett 2015): total magnification μ ≥ 3, arc S/N ≥ 20 in the best band (the
      optimal-aperture S/N of the lensed source), resolved (μ R_source > seeing FWHM) and
      θ_E² > R_source² + (FWHM/2)²;
    - ``challenge2`` (the Bologna challenge 2.0 label): n_source_im > 0, mag_eff > 1.6,
      n_pix_source > 20;
    - ``any``: every system drawn (the source inside the Einstein radius).

    A lens image is redrawn (deflector and source, up to ``max_draws`` systems) until it meets the
    definition, so nothing below it is labelled ``lens``; systems below it appear only as the
    non-lens look-alike ``undetectable_lens`` when its fraction is set. The noise the arc S/N
    and the pixel counts are measured against is the image's (sky, read-out, photon noise of all
    its light) plus ``lens_light_residual`` × the light of everything but the source: 0 is
    LensPop's Poisson-limited lens subtraction; the light model of a real lens galaxy is good to
    a few per cent (He et al. 2024, MNRAS 532, 2441: < 5 %).
    """

    name: str = "lenspop"
    lens_light_residual: float = 0.0
    max_draws: int = 20000

    def __post_init__(self) -> None:
        require(
            self.name in LENS_DEFINITIONS,
            f"lens_definition.name must be one of {LENS_DEFINITIONS}, got {self.name!r}",
        )
        require(
            0 <= self.lens_light_residual < 1,
            "lens_definition.lens_light_residual must be in [0, 1)",
        )
        require(self.max_draws >= 1, "lens_definition.max_draws must be >= 1")


# Training mixtures (not sky frequencies; see LookalikeConfig): plain galaxies dominate the
# non-lenses; lenses get field contaminants too, so that "has a companion or a star" is no
# shortcut to "not a lens".
_NON_LENS_FRACTIONS = (0.30, 0.10, 0.12, 0.08, 0.12, 0.08, 0.10, 0.10, 0.0)
_LENS_FRACTIONS = (0.70, 0.10, 0.10, 0.10, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class LookalikeConfig(Config):
    """Mixture and populations of look-alikes; fractions follow :data:`LOOKALIKE_KINDS`.

    Each look-alike is drawn from its own population, not scaled from the elliptical. How often
    each confuses a search on the sky, and what we do:

    - ``neighbour``: a second elliptical of the group at the same redshift (σ a fraction
      ``neighbour_sigma_ratio_range`` of the central one's), ``neighbour_separation_arcsec`` away;
    - ``line_of_sight``: an unlensed galaxy of the source population (magnitudes
      ``line_of_sight_magnitude_range`` from the same counts) projected within
      ``line_of_sight_separation_arcsec``: to i < 25 there are 0.013 galaxies per arcsec² (LSST
      Science Book), so a third of all galaxies have such a neighbour within 3″;
    - ``star``: 1..``max_stars`` stars (``star_magnitude_range``) within
      ``star_separation_arcsec``; a few thousand stars per deg² at high latitude make this rare
      on the sky (< 1 % within 4″), common in candidate lists;
    - ``spiral``: a disc galaxy (below) seen within ``spiral_max_inclination_deg`` of face-on,
      whose logarithmic arms (``arm_fraction_range`` of the disc light, pitch
      ``arm_pitch_deg_range``) are bluer than the smooth disc and carry star-forming clumps;
      spirals are ≈ 2/3 of bright galaxies (Lintott et al. 2011, MNRAS 410, 166);
    - ``edge_on``: a disc galaxy inclined more than ``edge_on_min_inclination_deg``; for random
      orientations cos i is uniform, so ≈ 17 % of discs are within 10° of edge-on;
    - ``ring``: a bulge-dominated disc galaxy (B/T ``ring_bulge_fraction_range``) with a blue,
      knotty ring of radius ``ring_radius_factor_range`` × the disc's half-light radius holding
      ``ring_flux_fraction_range`` of the light, ``ring_knot_fraction_range`` of it in 3..
      ``max_knots`` clumps; outer rings are found in ≈ 16 % and inner rings in ≈ 30 % of disc
      galaxies (Comerón et al. 2014, A&A 562, A121), collisional rings are rare;
    - ``merger``: an elliptical (drawn as the deflectors), a partner galaxy at
      ``merger_separation_factor_range`` × its half-light radius and 1..``max_tidal_features``
      tidal tails or shells (thin arcs, ``tidal_flux_fraction_range`` of the host's light);
      tidal features are seen around 12–18 % of bright galaxies at CFHTLS depth (Atkinson,
      Abraham & Ferguson 2013, ApJ 765, 28), shells around ≈ 10 % of ellipticals (Malin & Carter
      1983, ApJ 274, 534);
    - ``undetectable_lens``: a lens system (drawn as the lenses) that falls below the lens
      definition, labelled non-lens (0 by default: set its fraction to include such systems;
      the evaluation reports them apart).

    Disc galaxies are as bright as lens candidates: the apparent magnitude of the lens galaxy of
    a system drawn for the same image (one that meets the lens definition), then redshift and
    luminosity from the disc population at that magnitude: comoving volume in
    ``disc_z_range`` × the Blanton et al. (2003) luminosity function in
    ``disc_absolute_magnitude_range``. Their half-light radius from Shen et al. (2003, late
    types) grown as (1 + z)^−0.75 (van der Wel et al. 2014), bulge-to-total
    ``bulge_fraction_range`` with a bulge of ``bulge_radius_fraction_range`` × the disc radius
    (Gadotti 2009, MNRAS 393, 1531), intrinsic thickness q0 in ``disc_thickness_range``
    (Hubble's q² = cos² i + q0² sin² i), star-forming clumps of σ in ``clump_radius_kpc_range``.
    """

    non_lens_fractions: tuple[float, ...] = _NON_LENS_FRACTIONS
    lens_fractions: tuple[float, ...] = _LENS_FRACTIONS
    neighbour_separation_arcsec: Range = (1.5, 5.0)
    neighbour_sigma_ratio_range: Range = (0.5, 1.0)
    line_of_sight_separation_arcsec: Range = (0.5, 3.0)
    line_of_sight_magnitude_range: Range = (20.0, 25.0)
    max_stars: int = 3
    star_separation_arcsec: Range = (0.8, 4.0)
    star_magnitude_range: Range = (16.0, 24.0)
    disc_z_range: Range = (0.01, 2.0)
    disc_absolute_magnitude_range: Range = (-23.5, -18.5)
    disc_thickness_range: Range = (0.1, 0.2)
    bulge_fraction_range: Range = (0.05, 0.4)
    bulge_radius_fraction_range: Range = (0.1, 0.3)
    clump_radius_kpc_range: Range = (0.2, 0.6)
    max_knots: int = 8
    spiral_max_inclination_deg: float = 70.0
    arm_fraction_range: Range = (0.3, 0.7)
    arm_pitch_deg_range: Range = (10.0, 30.0)
    arm_clump_fraction_range: Range = (0.1, 0.3)
    edge_on_min_inclination_deg: float = 80.0
    ring_bulge_fraction_range: Range = (0.3, 0.7)
    ring_radius_factor_range: Range = (1.2, 2.5)
    ring_width_fraction_range: Range = (0.08, 0.25)
    ring_flux_fraction_range: Range = (0.15, 0.45)
    ring_knot_fraction_range: Range = (0.3, 0.7)
    merger_separation_factor_range: Range = (0.5, 2.0)
    merger_sigma_ratio_range: Range = (0.3, 0.8)
    max_tidal_features: int = 3
    tidal_flux_fraction_range: Range = (0.05, 0.25)
    tidal_radius_factor_range: Range = (1.5, 5.0)
    tidal_extent_deg_range: Range = (40.0, 150.0)
    tidal_width_fraction_range: Range = (0.05, 0.15)

    def __post_init__(self) -> None:
        for name in ("non_lens_fractions", "lens_fractions"):
            values = getattr(self, name)
            require(
                len(values) == len(LOOKALIKE_KINDS),
                f"lookalikes.{name} needs {len(LOOKALIKE_KINDS)} values for {LOOKALIKE_KINDS}",
            )
            require(
                all(v >= 0 for v in values) and math.isclose(sum(values), 1.0, abs_tol=1e-6),
                f"lookalikes.{name} must be non-negative and sum to 1, got {values}",
            )
        for kind in NON_LENS_ONLY_KINDS:
            require(
                self.lens_fractions[LOOKALIKE_KINDS.index(kind)] == 0,
                f"lookalikes.lens_fractions: a lens cannot be a {kind}",
            )
        for name, value in vars(self).items():
            if name.endswith(("_arcsec", "_range", "_kpc_range", "_deg_range")) and isinstance(
                value, tuple
            ):
                require_range(f"lookalikes.{name}", value, *_LOOKALIKE_BOUNDS.get(name, (0.0,)))
        require(1 <= self.max_stars <= 20, "lookalikes.max_stars must be in 1..20")
        require(3 <= self.max_knots <= 32, "lookalikes.max_knots must be in 3..32")
        require(1 <= self.max_tidal_features <= 8, "lookalikes.max_tidal_features must be in 1..8")
        require(
            0 < self.spiral_max_inclination_deg <= 90
            and 0 <= self.edge_on_min_inclination_deg < 90,
            "lookalikes inclination limits must be angles in degrees (0..90)",
        )
        require(self.arm_pitch_deg_range[0] > 0, "lookalikes.arm_pitch_deg_range must be > 0")
        require(self.ring_width_fraction_range[0] > 0, "ring widths must be positive")
        require(self.tidal_width_fraction_range[0] > 0, "tidal feature widths must be positive")
        require(self.clump_radius_kpc_range[0] > 0, "clump radii must be positive")


# (low[, high]) bounds of the look-alike ranges that are not plain non-negative numbers.
_LOOKALIKE_BOUNDS: dict[str, tuple[float, ...]] = {
    "line_of_sight_magnitude_range": (10.0, 35.0),
    "star_magnitude_range": (5.0, 35.0),
    "disc_absolute_magnitude_range": (-26.0, -15.0),
    "disc_z_range": (1e-3, 3.0),
    "disc_thickness_range": (0.02, 0.5),
    "bulge_fraction_range": (0.0, 0.95),
    "bulge_radius_fraction_range": (0.01, 1.0),
    "arm_fraction_range": (0.0, 0.95),
    "arm_clump_fraction_range": (0.0, 0.95),
    "ring_bulge_fraction_range": (0.0, 0.95),
    "ring_width_fraction_range": (0.0, 1.0),
    "ring_flux_fraction_range": (0.0, 0.95),
    "ring_knot_fraction_range": (0.0, 0.95),
    "merger_sigma_ratio_range": (0.05, 1.0),
    "tidal_flux_fraction_range": (0.0, 0.95),
    "tidal_extent_deg_range": (1.0, 360.0),
    "tidal_width_fraction_range": (0.0, 1.0),
    "neighbour_sigma_ratio_range": (0.05, 2.0),
}


@dataclass(frozen=True)
class ColourConfig(Config):
    """Colour sequences per band, ``m_band − m_reference`` at (t=0, t=1); one entry per band."""

    red_galaxy: ColourTable = ((0.0, 0.0),)
    blue_galaxy: ColourTable = ((0.0, 0.0),)
    star: ColourTable = ((0.0, 0.0),)


@dataclass(frozen=True)
class LensFindConfig(Config):
    """Everything that defines a lens-finding dataset except its size, lens fractions and seed."""

    preset: str = "lensfind_ground"
    instrument: SurveyConfig = field(default_factory=SurveyConfig)
    deflector: DeflectorPopulationConfig = field(default_factory=DeflectorPopulationConfig)
    source: SourcePopulationConfig = field(default_factory=SourcePopulationConfig)
    lens_definition: LensDefinitionConfig = field(default_factory=LensDefinitionConfig)
    lookalikes: LookalikeConfig = field(default_factory=LookalikeConfig)
    colours: ColourConfig = field(default_factory=ColourConfig)
    h0: float = 70.0
    omega_m: float = 0.3
    store_clean: bool = False  # also store each image without noise (/targets/clean)

    def __post_init__(self) -> None:
        check_colour_tables(self)
        hidden = self.lookalikes.non_lens_fractions[LOOKALIKE_KINDS.index("undetectable_lens")]
        require(
            not (hidden > 0 and self.lens_definition.name == "any"),
            "lookalikes.non_lens_fractions asks for undetectable lenses, but lens_definition "
            "'any' makes every system a lens",
        )
        n_bands = len(self.instrument.bands)
        require(
            len(self.deflector.colour_terms) == n_bands,
            f"deflector.colour_terms has {len(self.deflector.colour_terms)} rows but "
            f"instrument.bands has {n_bands}: give one row per band",
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES
