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
LOOKALIKE_KINDS = ("none", "neighbour", "line_of_sight", "spiral", "edge_on", "ring", "star")
# Kinds that replace the central elliptical: impossible for a lens, whose deflector is that galaxy.
CENTRAL_KINDS = ("spiral", "edge_on", "ring")

Range = tuple[float, float]
ColourTable = tuple[tuple[float, float], ...]


# -- checks shared with the lensed-transient simulator's configs --------------------------------
def check_galaxy_population(config: Any) -> None:
    """Cosmology, one colour pair per band (zero in the reference band) and source redshifts
    beyond the deflectors', for a config with ``instrument``, ``colours``, ``source``,
    ``deflector``, ``h0`` and ``omega_m``."""
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
    """The lens-galaxy population (lenses and plain non-lenses alike).

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
    """Background Sérsic sources (and the line-of-sight look-alikes, drawn unlensed).

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


# Default mixtures: plain galaxies dominate the non-lenses; lenses get field contaminants too,
# so that "has a companion or a star" is no shortcut to "not a lens".
_NON_LENS_FRACTIONS = (0.40, 0.12, 0.12, 0.12, 0.08, 0.08, 0.08)
_LENS_FRACTIONS = (0.70, 0.10, 0.10, 0.0, 0.0, 0.0, 0.10)


@dataclass(frozen=True)
class LookalikeConfig(Config):
    """Mixture and shapes of look-alikes; fractions follow :data:`LOOKALIKE_KINDS`.

    - neighbour: a second member of the lens-galaxy population at the same redshift, its velocity
      dispersion a fraction ``neighbour_sigma_ratio_range`` of the central galaxy's;
    - line_of_sight: an unlensed galaxy of the source population next to the lens galaxy;
    - spiral: bulge + exponential disc modulated by a logarithmic spiral (bluer disc);
    - edge_on: bulge + very flat exponential disc;
    - ring: an elliptical core with a blue Gaussian annulus around it;
    - star: the lens galaxy plus 1..``max_stars`` PSF-shaped stars, some bright.
    Spirals, edge-on discs and rings take the central galaxy's reference-band brightness (so
    brightness alone does not tell them apart) and its size scale: the bulge or core keeps a
    fraction of the flux and the galaxy's profile shrunk by ``bulge_size_factor_range`` (spiral,
    edge-on) or unchanged (ring); the exponential disc is ``disc_size_factor_range`` times larger.
    """

    non_lens_fractions: tuple[float, ...] = _NON_LENS_FRACTIONS
    lens_fractions: tuple[float, ...] = _LENS_FRACTIONS
    neighbour_separation_arcsec: Range = (1.5, 5.0)
    line_of_sight_separation_arcsec: Range = (0.6, 3.0)
    bulge_fraction_range: Range = (0.1, 0.5)
    bulge_size_factor_range: Range = (0.3, 0.6)
    neighbour_sigma_ratio_range: Range = (0.5, 1.0)
    disc_size_factor_range: Range = (1.5, 3.0)
    disc_axis_ratio_range: Range = (0.4, 1.0)
    arm_amplitude_range: Range = (0.5, 0.9)
    arm_pitch_deg_range: Range = (10.0, 30.0)
    edge_on_axis_ratio_range: Range = (0.08, 0.22)
    ring_radius_arcsec: Range = (0.8, 2.5)
    ring_width_fraction_range: Range = (0.1, 0.3)
    ring_flux_fraction_range: Range = (0.2, 0.6)
    ring_axis_ratio_range: Range = (0.6, 1.0)
    max_stars: int = 3
    star_separation_arcsec: Range = (0.8, 4.0)
    star_magnitude_range: Range = (16.0, 24.0)

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
        for kind in CENTRAL_KINDS:
            require(
                self.lens_fractions[LOOKALIKE_KINDS.index(kind)] == 0,
                f"lookalikes.lens_fractions: a lens cannot be a {kind} (it replaces the deflector)",
            )
        for name in (
            "neighbour_separation_arcsec",
            "line_of_sight_separation_arcsec",
            "disc_size_factor_range",
            "bulge_size_factor_range",
            "neighbour_sigma_ratio_range",
            "arm_pitch_deg_range",
            "ring_radius_arcsec",
            "star_separation_arcsec",
            "star_magnitude_range",
        ):
            require_range(f"lookalikes.{name}", getattr(self, name), low=0.0)
        require_range("lookalikes.arm_amplitude_range", self.arm_amplitude_range, 0.0, 1.0)
        require_range(
            "lookalikes.ring_width_fraction_range", self.ring_width_fraction_range, 0.0, 1.0
        )
        for name in ("bulge_fraction_range", "ring_flux_fraction_range"):
            lo, hi = getattr(self, name)
            require(0 < lo <= hi < 1, f"lookalikes.{name} must lie inside (0, 1), got {(lo, hi)}")
        for name in ("disc_axis_ratio_range", "edge_on_axis_ratio_range", "ring_axis_ratio_range"):
            require_range(f"lookalikes.{name}", getattr(self, name), 0.02, 1.0)
        require(self.arm_pitch_deg_range[0] > 0, "lookalikes.arm_pitch_deg_range must be > 0")
        require(self.ring_width_fraction_range[0] > 0, "ring widths must be positive")
        require(1 <= self.max_stars <= 20, "lookalikes.max_stars must be in 1..20")


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
    deflector: DeflectorConfig = field(default_factory=DeflectorConfig)
    source: LensedSourceConfig = field(default_factory=LensedSourceConfig)
    lookalikes: LookalikeConfig = field(default_factory=LookalikeConfig)
    colours: ColourConfig = field(default_factory=ColourConfig)
    h0: float = 70.0
    omega_m: float = 0.3
    store_clean: bool = False  # also store each image without noise (/targets/clean)

    def __post_init__(self) -> None:
        check_galaxy_population(self)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES
