"""Frozen settings for the lensed-transient simulator (DeepGraviLens-like multi-epoch cutouts).

Units are in the field names: angles in arcsec, magnitudes AB, times in days (observer frame
unless a name says ``rest``), exposures in seconds. A ``*_range`` is a (low, high) pair drawn
uniformly. The lens-galaxy, source-galaxy and colour settings reuse the lens-finding simulator's
config classes, so both simulators share one galaxy population model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from darklens.config import Config, require, require_range
from darklens.simulate.instrument import CCDBand, SurveyBands, check_survey_grid
from darklens.simulate.lensfind.config import (
    ColourConfig,
    DeflectorConfig,
    LensedSourceConfig,
    Range,
    check_galaxy_population,
)

CLASS_NAMES = ("no_lens", "galaxy_lens", "lensed_sn_ia", "lensed_sn_cc")
# Look-alikes that make up class 0 ("no lens"), in the order of ``non_lens_fractions``.
NON_LENS_KINDS = ("galaxy", "sn_ia_in_host", "sn_cc_in_host", "galaxy_pair", "star", "empty_sky")
# Codes of the truth column ``object_kind``: the non-lens kinds, then one kind per lens class.
OBJECT_KINDS = (*NON_LENS_KINDS, "galaxy_lens", "lensed_sn_ia", "lensed_sn_cc")
SN_TYPES = ("ia", "cc")


@dataclass(frozen=True)
class TransientBandConfig(CCDBand):
    """One filter of a single-epoch visit: seeing (FWHM) and sky drawn per epoch in the ranges;
    lenstronomy's CCD noise terms (:class:`CCDBand`)."""

    name: str = "r"
    exposure_time_s: float = 90.0
    num_exposures: int = 1
    magnitude_zero_point: float = 26.78
    read_noise_e: float = 7.0
    ccd_gain: float = 6.083
    seeing_fwhm_range_arcsec: Range = (0.8, 1.4)
    sky_brightness_range_mag_arcsec2: Range = (20.6, 21.6)

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"band {self.name}"
        require_range(f"{where}: seeing_fwhm_range_arcsec", self.seeing_fwhm_range_arcsec, 1e-3)
        require_range(
            f"{where}: sky_brightness_range_mag_arcsec2", self.sky_brightness_range_mag_arcsec2
        )


def _des_band(name: str, seeing: Range, sky: Range, zero_point: float) -> TransientBandConfig:
    return TransientBandConfig(
        name=name,
        exposure_time_s=90.0,
        magnitude_zero_point=zero_point,
        read_noise_e=7.0,
        ccd_gain=6.083,
        seeing_fwhm_range_arcsec=seeing,
        sky_brightness_range_mag_arcsec2=sky,
    )


_DES_BANDS = (
    _des_band("g", (0.9, 1.6), (21.5, 22.5), 26.58),
    _des_band("r", (0.8, 1.4), (20.7, 21.6), 26.78),
    _des_band("i", (0.75, 1.3), (19.5, 20.4), 26.75),
    _des_band("z", (0.7, 1.25), (18.3, 19.2), 26.48),
)


@dataclass(frozen=True)
class TransientSurveyConfig(SurveyBands, Config):
    """Cutout grid, bands, cadence, noise and photometry.

    Epoch j is observed ``j · cadence_days`` after the first (all bands the same night).
    ``aperture_radius_px``: light curves are the flux within this radius of the cutout centre
    minus the median of the pixels outside it. ``store_epoch_images`` also writes every noisy
    epoch image (``inputs/epoch_images`` [N, T, bands, H, W]; large).
    """

    name: str = "des_deep"
    num_pix: int = 45
    pixel_scale_arcsec: float = 0.263
    bands: tuple[TransientBandConfig, ...] = _DES_BANDS
    reference_band: str = "r"
    n_epochs: int = 15
    cadence_days: float = 7.0
    aperture_radius_px: float = 15.0
    psf_truncation_sigma: float = 5.0
    supersampling: int = 2
    noise: str = "ccd"
    store_epoch_images: bool = False

    def __post_init__(self) -> None:
        check_survey_grid(self, max_num_pix=256)
        require(
            1 <= self.n_epochs <= 200, f"instrument.n_epochs must be in 1..200, got {self.n_epochs}"
        )
        require(self.cadence_days > 0, "instrument.cadence_days must be positive")
        require(
            0 < self.aperture_radius_px < self.num_pix / 2,
            "instrument.aperture_radius_px must be in (0, num_pix/2), got "
            f"{self.aperture_radius_px}",
        )

    def epoch_times_days(self) -> list[float]:
        return [j * self.cadence_days for j in range(self.n_epochs)]


@dataclass(frozen=True)
class SupernovaTypeConfig(Config):
    """A Bazin-like light curve, f(t) ∝ exp(−u/τ_fall) / (1 + exp(−u/τ_rise)), per band.

    Rest-frame timescales (days) are stretched by (1 + z); ``rise_days_rest`` is the time from
    explosion to peak (zero flux before explosion). Peak apparent magnitude in the reference band
    = M_peak (Gaussian scatter) + distance modulus + ``k_correction_mag_per_z``·z; other bands
    add ``colours`` (m_band − m_ref at peak, one per band). ``tau_fall_days_rest`` is per band.
    """

    peak_absolute_magnitude: float = -19.3
    magnitude_scatter: float = 0.15
    k_correction_mag_per_z: float = 0.5
    rise_days_rest: float = 18.0
    tau_rise_days_rest: float = 4.0
    tau_fall_days_rest: tuple[float, ...] = (12.0, 18.0, 25.0, 30.0)
    colours: tuple[float, ...] = (0.1, 0.0, 0.1, 0.2)

    def __post_init__(self) -> None:
        require(self.magnitude_scatter >= 0, "supernova magnitude_scatter must be >= 0")
        require(self.tau_rise_days_rest > 0, "supernova tau_rise_days_rest must be positive")
        require(self.rise_days_rest > 0, "supernova rise_days_rest must be positive")
        require(
            all(tau > 2 * self.tau_rise_days_rest for tau in self.tau_fall_days_rest),
            "supernova tau_fall_days_rest must exceed twice tau_rise_days_rest (a peak needs "
            "τ_fall > τ_rise; the factor keeps the rise shorter than the decline)",
        )


@dataclass(frozen=True)
class SupernovaConfig(Config):
    """Type Ia and core-collapse supernovae, their hosts and where they explode.

    Explosion epochs are uniform in ``explosion_window_days`` relative to the first epoch.
    ``lensed_z_range`` (default: the lensed-source range) is the redshift range of lensed SNe and
    their hosts. Survey samples hold only supernovae that were seen: with
    ``detection_limit_mag``, a supernova (lensed or in its host) is redrawn — position, explosion
    time and brightness — up to ``max_detection_tries`` times until its brightest image is
    brighter than that magnitude in some band at some epoch (else the brightest draw is kept);
    ``detection_contrast`` further asks that it then reach that fraction of the flux of the galaxy
    it sits on (the lens, or its host), so that it shows in the aperture light curve.
    A lensed SN's unlensed position is uniform in the disc of radius ``max_offset_theta_e``·θ_E
    about the lens, redrawn until the lens makes at least two images; its host's centre is offset
    from the SN by up to ``host_offset_r_sersic`` host radii.
    """

    ia: SupernovaTypeConfig = field(default_factory=SupernovaTypeConfig)
    cc: SupernovaTypeConfig = field(
        default_factory=lambda: SupernovaTypeConfig(
            peak_absolute_magnitude=-17.5,
            magnitude_scatter=0.8,
            k_correction_mag_per_z=0.3,
            rise_days_rest=10.0,
            tau_rise_days_rest=2.0,
            tau_fall_days_rest=(40.0, 60.0, 80.0, 90.0),
            colours=(0.3, 0.0, -0.1, -0.15),
        )
    )
    explosion_window_days: Range = (-40.0, 98.0)
    max_offset_theta_e: float = 0.8
    host_offset_r_sersic: float = 1.0
    unlensed_host_z_range: Range = (0.1, 0.6)
    lensed_z_range: Range | None = None
    detection_limit_mag: float | None = None
    detection_contrast: float = 0.0
    max_detection_tries: int = 200

    def __post_init__(self) -> None:
        require_range("supernova.explosion_window_days", self.explosion_window_days)
        if self.lensed_z_range is not None:
            require_range("supernova.lensed_z_range", self.lensed_z_range, 1e-3)
        require(
            self.detection_limit_mag is None or 15 < self.detection_limit_mag < 32,
            "supernova.detection_limit_mag must be an AB magnitude in (15, 32) or null",
        )
        require(self.max_detection_tries >= 1, "supernova.max_detection_tries must be >= 1")
        require(self.detection_contrast >= 0, "supernova.detection_contrast must be >= 0 (0: off)")
        require(
            0 < self.max_offset_theta_e <= 1.0, "supernova.max_offset_theta_e must be in (0, 1]"
        )
        require(self.host_offset_r_sersic >= 0, "supernova.host_offset_r_sersic must be >= 0")
        require_range("supernova.unlensed_host_z_range", self.unlensed_host_z_range, 1e-3)


_NON_LENS_FRACTIONS = (0.3, 0.15, 0.15, 0.15, 0.15, 0.1)


@dataclass(frozen=True)
class TransientsConfig(Config):
    """Everything that defines a lensed-transient dataset except its size and seed."""

    preset: str = "transients_des_deep"
    instrument: TransientSurveyConfig = field(default_factory=TransientSurveyConfig)
    deflector: DeflectorConfig = field(default_factory=DeflectorConfig)
    source: LensedSourceConfig = field(default_factory=LensedSourceConfig)
    supernova: SupernovaConfig = field(default_factory=SupernovaConfig)
    colours: ColourConfig = field(default_factory=ColourConfig)
    non_lens_fractions: tuple[float, ...] = _NON_LENS_FRACTIONS
    pair_separation_arcsec: Range = (0.8, 3.0)
    star_magnitude_range: Range = (17.0, 23.0)
    h0: float = 70.0
    omega_m: float = 0.3

    def __post_init__(self) -> None:
        check_galaxy_population(self)
        lensed_z = self.supernova.lensed_z_range
        require(
            lensed_z is None
            or lensed_z[1] > self.deflector.z_range[1] + self.source.min_redshift_gap,
            "supernova.lensed_z_range must reach beyond the deflector's highest redshift + "
            "source.min_redshift_gap",
        )
        n_bands = len(self.instrument.bands)
        for sn_type in SN_TYPES:
            sn = getattr(self.supernova, sn_type)
            for name in ("tau_fall_days_rest", "colours"):
                require(
                    len(getattr(sn, name)) == n_bands,
                    f"supernova.{sn_type}.{name} needs one value per band ({n_bands})",
                )
        fractions = self.non_lens_fractions
        require(
            len(fractions) == len(NON_LENS_KINDS)
            and all(f >= 0 for f in fractions)
            and math.isclose(sum(fractions), 1.0, abs_tol=1e-6),
            f"non_lens_fractions must be {len(NON_LENS_KINDS)} non-negative numbers summing to 1 "
            f"for {NON_LENS_KINDS}, got {fractions}",
        )
        require_range("pair_separation_arcsec", self.pair_separation_arcsec, 0.0)
        require_range("star_magnitude_range", self.star_magnitude_range)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES
