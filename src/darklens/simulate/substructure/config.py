"""Frozen settings for the substructure simulator (DeepLense Models I–III and user variants).

Units are in the field names: angles in arcsec, masses in solar masses, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from darklens.config import Config, require
from darklens.simulate.func.cosmology import DISTANCE_KINDS
from darklens.simulate.instrument import CCDBand

CLASS_NAMES = ("no_sub", "cdm", "axion")
NOISE_KINDS = ("none", "counts", "ccd")


@dataclass(frozen=True)
class InstrumentConfig(CCDBand):
    """Detector grid, PSF and noise (the CCD terms of :class:`CCDBand` plus the grid and sky).

    ``noise`` selects the noise model:
    - ``counts`` (DeepLense Model I): image × exposure plus Gaussian background and Poisson-like
      noise, then Poisson-sampled to integer counts; the exposure is drawn per image as
      10^U(``log10_exposure_range``), the background rms is ``background_rms`` (image units);
    - ``ccd`` (lenstronomy's SingleBand): image in e-/s; Gaussian background noise from sky
      brightness, read noise and total exposure, plus Gaussian-approximated Poisson noise of
      the source flux;
    - ``none``: the noiseless model.
    """

    name: str = "euclid_vis"
    exposure_time_s: float = 566.0
    num_exposures: int = 1
    magnitude_zero_point: float = 25.72
    read_noise_e: float = 4.2
    ccd_gain: float = 3.1
    num_pix: int = 64
    pixel_scale_arcsec: float = 0.101
    psf_fwhm_arcsec: float = 0.16
    psf_truncation_sigma: float = 5.0
    noise: str = "ccd"
    sky_brightness_mag_arcsec2: float = 22.3
    log10_exposure_range: tuple[float, float] = (3.0, 3.5)
    background_rms: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        require(
            self.noise in NOISE_KINDS,
            f"instrument.noise must be one of {NOISE_KINDS}, got {self.noise!r}",
        )
        require(
            8 <= self.num_pix <= 1024, f"instrument.num_pix must be in 8..1024, got {self.num_pix}"
        )
        require(self.pixel_scale_arcsec > 0, "instrument.pixel_scale_arcsec must be positive")
        require(self.psf_fwhm_arcsec >= 0, "instrument.psf_fwhm_arcsec must be >= 0 (0 = no PSF)")
        require(self.psf_truncation_sigma > 0, "instrument.psf_truncation_sigma must be positive")
        lo, hi = self.log10_exposure_range
        require(lo <= hi, f"instrument.log10_exposure_range must be (low, high), got {(lo, hi)}")
        require(self.background_rms >= 0, "instrument.background_rms must be >= 0")

    @property
    def background_sigma(self) -> float:
        """Gaussian background σ per pixel (e-/s) of the CCD noise model."""
        return float(
            self.background_sigma_e_per_s(self.pixel_scale_arcsec, self.sky_brightness_mag_arcsec2)
        )


@dataclass(frozen=True)
class LensConfig(Config):
    """Main deflector: an SIE of mass ``mass_msun`` plus external shear, with the cosmology."""

    z_lens: float = 0.5
    z_source: float = 1.0
    h0: float = 70.0
    omega_m: float = 0.3
    mass_msun: float = 1e12
    e1: float = 0.1
    e2: float = 0.0
    gamma1: float = 0.05
    gamma2: float = 0.0

    def __post_init__(self) -> None:
        require(0 < self.z_lens < self.z_source, "need 0 < lens.z_lens < lens.z_source")
        require(self.h0 > 0 and 0 < self.omega_m <= 1, "need lens.h0 > 0 and 0 < lens.omega_m <= 1")
        require(self.mass_msun > 0, "lens.mass_msun must be positive")
        require((self.e1**2 + self.e2**2) ** 0.5 < 1, "lens ellipticity |e| must be < 1")


@dataclass(frozen=True)
class SourceConfig(Config):
    """Elliptical Sérsic source; brightness as a lenstronomy ``amplitude`` or a ``magnitude``."""

    r_sersic_arcsec: float = 0.25
    n_sersic: float = 1.0
    e1: float = -0.1
    e2: float = 0.1
    center_max_arcsec: float = 0.35
    magnitude: float | None = 20.0
    amplitude: float | None = None

    def __post_init__(self) -> None:
        require(self.r_sersic_arcsec > 0, "source.r_sersic_arcsec must be positive")
        require(0.2 <= self.n_sersic <= 8, "source.n_sersic must be in 0.2..8")
        require((self.e1**2 + self.e2**2) ** 0.5 < 1, "source ellipticity |e| must be < 1")
        require(self.center_max_arcsec >= 0, "source.center_max_arcsec must be >= 0")
        require(
            (self.magnitude is None) != (self.amplitude is None),
            "set exactly one of source.magnitude and source.amplitude (the other to null)",
        )


@dataclass(frozen=True)
class CDMConfig(Config):
    """Point-mass subhalos: p(m) ∝ m^slope, radius r ~ U(r_min, r_max), angle ~ U(0, 2π)."""

    n_subhalos: int = 25
    mass_min_msun: float = 1e6
    mass_max_msun: float = 1e10
    mass_slope: float = -0.9
    r_min_arcsec: float = 0.25
    r_max_arcsec: float = 2.0

    def __post_init__(self) -> None:
        require(0 <= self.n_subhalos <= 10_000, "cdm.n_subhalos must be in 0..10000")
        require(0 < self.mass_min_msun < self.mass_max_msun, "need 0 < cdm.mass_min < cdm.mass_max")
        require(self.mass_slope != -1.0, "cdm.mass_slope = -1 is not supported (log-uniform)")
        require(0 <= self.r_min_arcsec <= self.r_max_arcsec, "need 0 <= cdm.r_min <= cdm.r_max")


@dataclass(frozen=True)
class AxionConfig(Config):
    """Vortex: a straight string of ``n_points`` equal point masses through the lens centre.

    Its half-length is ``length_coefficient / (2 m_a)`` arcsec with m_a = 10^U(log10 range) eV.
    """

    n_points: int = 100
    total_mass_msun: float = 3e10
    log10_axion_mass_ev_range: tuple[float, float] = (-24.0, -22.0)
    length_coefficient: float = 0.06e-22

    def __post_init__(self) -> None:
        require(1 <= self.n_points <= 10_000, "axion.n_points must be in 1..10000")
        require(self.total_mass_msun > 0, "axion.total_mass_msun must be positive")
        lo, hi = self.log10_axion_mass_ev_range
        require(lo <= hi, "axion.log10_axion_mass_ev_range must be (low, high)")
        require(self.length_coefficient > 0, "axion.length_coefficient must be positive")


@dataclass(frozen=True)
class DeepLenseCompatConfig(Config):
    """What ``deeplense_compat`` reproduces of DeepLenseSim's scripts (github.com/mwt5345/
    DeepLenseSim, ``deeplense/lens.py`` and ``Model_*/sim_*.py``) for one model.

    - ``distances``: its ``mass_to_radius`` computes θ_E = sqrt(4GM/c² D_ls/(D_l D_s)) from
      *luminosity* distances with D_ls = D_s − D_l (FlatLambdaCDM H0 70, Ωm 0.3): 1.28″ for the
      1e12 M☉ main lens, where angular-diameter distances give the physical 1.66″;
    - ``z_source_convention``: Models II and III render through lenstronomy's ``SimAPI`` with
      ``kwargs_model = {lens_redshift_list, source_redshift_list, cosmo, z_source_convention: 2.5,
      z_source: 1.0}``: the θ_E values are read as Einstein radii for a source at z = 2.5 and
      every deflection (SIE, shear, point masses) is rescaled to the source at z = 1 by
      β = (D_ls/D_s)(1) / (D_ls/D_s)(2.5) ≈ 0.633 (angular-diameter distances of ``cosmo``); None
      for Model I, which calls ``ImageModel`` directly;
    - ``convention_h0`` / ``convention_omega_m``: ``cosmo`` is pyHalo's ``astropy_instance``,
      FlatLambdaCDM(H0 67.5, Ωm 0.309) in pyHalo ≥ Feb 2022 (Planck 2018; WMAP9's 69.7/0.2814
      before, which changes β by 0.14 %);
    - ``twice_noiseless_model``: ``simple_sim_2`` stores ``image_model + image_model`` and discards
      the noise it computed (Models II and III).
    """

    distances: str = "luminosity"
    z_source_convention: float | None = None
    convention_h0: float = 67.5
    convention_omega_m: float = 0.309
    twice_noiseless_model: bool = False

    def __post_init__(self) -> None:
        require(
            self.distances in DISTANCE_KINDS,
            f"compat.distances must be one of {DISTANCE_KINDS}, got {self.distances!r}",
        )
        require(
            self.z_source_convention is None or self.z_source_convention > 0,
            "compat.z_source_convention must be positive (or null)",
        )
        require(
            self.convention_h0 > 0 and 0 < self.convention_omega_m <= 1,
            "need compat.convention_h0 > 0 and 0 < compat.convention_omega_m <= 1",
        )


@dataclass(frozen=True)
class SubstructureConfig(Config):
    """Everything that defines a substructure dataset except its size, split and seed.

    The default is the physical model: angular-diameter distances, θ_E for the actual source
    redshift, noise on. ``deeplense_compat`` switches to what DeepLenseSim's scripts actually
    produce for this model, as ``compat`` describes (:class:`DeepLenseCompatConfig`).
    """

    preset: str = "model_ii"
    instrument: InstrumentConfig = field(default_factory=InstrumentConfig)
    lens: LensConfig = field(default_factory=LensConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    cdm: CDMConfig = field(default_factory=CDMConfig)
    axion: AxionConfig = field(default_factory=AxionConfig)
    class_names: tuple[str, ...] = CLASS_NAMES
    deeplense_compat: bool = False
    compat: DeepLenseCompatConfig = field(default_factory=DeepLenseCompatConfig)
    store_clean: bool = False  # also store each image without noise (/targets/clean)

    def __post_init__(self) -> None:
        if self.deeplense_compat and self.compat.z_source_convention is not None:
            require(
                self.compat.z_source_convention > self.lens.z_lens,
                "compat.z_source_convention must lie beyond lens.z_lens",
            )
        unknown = [c for c in self.class_names if c not in CLASS_NAMES]
        require(not unknown, f"unknown class(es) {unknown}; choose from {CLASS_NAMES}")
        require(len(self.class_names) >= 1, "need at least one class")
        require(len(set(self.class_names)) == len(self.class_names), "class names must be unique")
