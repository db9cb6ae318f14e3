"""Frozen settings for the substructure simulator (DeepLense Models I–III and user variants).

Units are in the field names: angles in arcsec, masses in solar masses, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from darklens.config import Config, require, require_range
from darklens.data.image_bank import BACKGROUNDS as BANK_BACKGROUNDS
from darklens.simulate.func.cosmology import DISTANCE_KINDS
from darklens.simulate.instrument import CCDBand

CLASS_NAMES = ("no_sub", "cdm", "axion")
NOISE_KINDS = ("none", "counts", "ccd")
SOURCE_KINDS = ("sersic", "image_bank")


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
    """The lensed source: an elliptical Sérsic (``kind="sersic"``) or real galaxy images
    (``kind="image_bank"``); brightness as a lenstronomy ``amplitude`` or a ``magnitude``.

    Image-bank sources (lenstronomy's ``INTERPOL`` profile) are drawn per image from ``bank``
    (a built-in name, a folder of .npy/.fits images or an HDF5 file: see
    :mod:`darklens.data.image_bank`), with ``bank_channel`` / ``bank_background`` applied when it
    is read. Each image's side spans ``bank_box_arcsec`` times a factor drawn log-uniformly in
    ``bank_scale_range``; it is rotated by an angle uniform in [−π, π) when ``bank_rotate`` and
    mirrored with probability 1/2 when ``bank_flip``. A bank source's ``magnitude`` (or
    ``amplitude``: a total flux in image units) is its total flux; the Sérsic fields are unused.
    """

    r_sersic_arcsec: float = 0.25
    n_sersic: float = 1.0
    e1: float = -0.1
    e2: float = 0.1
    center_max_arcsec: float = 0.35
    magnitude: float | None = 20.0
    amplitude: float | None = None
    kind: str = "sersic"
    bank: str = "hubble_deep_field"
    bank_box_arcsec: float = 0.64
    bank_scale_range: tuple[float, float] = (1.0, 1.0)
    bank_rotate: bool = True
    bank_flip: bool = False
    bank_channel: int | None = None
    bank_background: str = "none"

    def __post_init__(self) -> None:
        require(self.r_sersic_arcsec > 0, "source.r_sersic_arcsec must be positive")
        require(0.2 <= self.n_sersic <= 8, "source.n_sersic must be in 0.2..8")
        require((self.e1**2 + self.e2**2) ** 0.5 < 1, "source ellipticity |e| must be < 1")
        require(self.center_max_arcsec >= 0, "source.center_max_arcsec must be >= 0")
        require(
            (self.magnitude is None) != (self.amplitude is None),
            "set exactly one of source.magnitude and source.amplitude (the other to null)",
        )
        require(self.kind in SOURCE_KINDS, f"source.kind must be one of {SOURCE_KINDS}")
        require(bool(self.bank), "source.bank must name a built-in bank, a folder or a file")
        require(self.bank_box_arcsec > 0, "source.bank_box_arcsec must be positive")
        require_range("source.bank_scale_range", self.bank_scale_range, low=1e-3)
        require(
            self.bank_channel is None or self.bank_channel >= 0,
            "source.bank_channel must be >= 0 (or null: the mean of the channels)",
        )
        require(
            self.bank_background in BANK_BACKGROUNDS,
            f"source.bank_background must be one of {BANK_BACKGROUNDS}",
        )


@dataclass(frozen=True)
class LensLightConfig(Config):
    """Light of the lens galaxy: elliptical Sérsic components at the lens centre (lenstronomy's
    ``lens_light_model_list``), not lensed, convolved with the PSF like the lensed source. One
    entry per component in each tuple; no components (the default) means no lens light."""

    magnitudes: tuple[float, ...] = ()
    r_sersic_arcsec: tuple[float, ...] = ()
    n_sersic: tuple[float, ...] = ()
    e1: tuple[float, ...] = ()
    e2: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.magnitudes)
        lengths = [len(v) for v in (self.r_sersic_arcsec, self.n_sersic, self.e1, self.e2)]
        require(
            all(length == n for length in lengths),
            "lens_light.magnitudes, r_sersic_arcsec, n_sersic, e1 and e2 need one entry per "
            f"component; got lengths {[n, *lengths]}",
        )
        require(all(r > 0 for r in self.r_sersic_arcsec), "lens_light.r_sersic_arcsec must be > 0")
        require(all(0.2 <= v <= 8 for v in self.n_sersic), "lens_light.n_sersic must be in 0.2..8")
        require(
            all((a**2 + b**2) ** 0.5 < 1 for a, b in zip(self.e1, self.e2, strict=True)),
            "lens_light ellipticities |e| must be < 1",
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
      the noise it computed (Models II and III);
    - ``einstein_radius_arcsec``: θ_E of the main SIE given directly instead of from
      ``lens.mass_msun`` (Model IV's scripts: 1.5″). Model IV's SimAPI is given ``z_source: 2.5``
      equal to its ``z_source_convention``, so nothing is rescaled (``z_source_convention``
      None here): its ``source_redshift_list: [1.0]`` does not reach single-plane ray tracing
      and the source is lensed as if it lay at z = 2.5;
    - ``no_sub_velocity_dispersion_kms``: (mean, sd) of a normal draw of σ_v: Model IV's
      ``sim_no_sub.py`` lenses with an SIS of that σ_v and no shear, θ_E = 4π (σ_v/c)² D_ls/D_s
      from SimAPI's ``physical2lensing_conversion`` for a source at
      ``no_sub_sigma_v_z_source`` (its z_source_convention, 2.5; None: ``lens.z_source``) with
      angular-diameter distances of ``lens.h0`` / ``lens.omega_m``;
    - ``normalize_max``: the stored image is clipped at 0 and divided by its maximum (Model IV's
      ``sim.clip(min=0) / np.max(sim)``).

    Image-bank sources are drawn as DeepLenseSim draws them in compat mode: rotated, never
    mirrored or rescaled (``source.bank_flip`` and ``source.bank_scale_range`` are ignored).
    """

    distances: str = "luminosity"
    z_source_convention: float | None = None
    convention_h0: float = 67.5
    convention_omega_m: float = 0.309
    twice_noiseless_model: bool = False
    einstein_radius_arcsec: float | None = None
    no_sub_velocity_dispersion_kms: tuple[float, float] | None = None
    no_sub_sigma_v_z_source: float | None = None
    normalize_max: bool = False

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
        require(
            self.einstein_radius_arcsec is None or self.einstein_radius_arcsec > 0,
            "compat.einstein_radius_arcsec must be positive (or null: from lens.mass_msun)",
        )
        sigma = self.no_sub_velocity_dispersion_kms
        require(
            sigma is None or (sigma[0] > 0 and sigma[1] >= 0),
            "compat.no_sub_velocity_dispersion_kms must be (mean > 0, sd >= 0) or null",
        )
        require(
            self.no_sub_sigma_v_z_source is None or self.no_sub_sigma_v_z_source > 0,
            "compat.no_sub_sigma_v_z_source must be positive (or null: lens.z_source)",
        )
        require(
            not (self.normalize_max and self.twice_noiseless_model),
            "compat.normalize_max and compat.twice_noiseless_model exclude each other",
        )


@dataclass(frozen=True)
class RandomizeConfig(Config):
    """Domain randomisation: when ``enabled``, every image draws its own lens, instrument, source
    and noise settings from these ranges (uniform unless said) instead of taking the fixed ones of
    ``lens``, ``instrument``, ``source`` and ``lens_light``. Those still give the grid size, the
    band's noise terms, the main lens mass that subhalo masses are relative to, the source
    position range and the image bank; ``cdm`` and ``axion`` give the substructure as always.

    - ``einstein_radius_arcsec_range``: the main SIE's effective θ_E; its ellipticity and the
      external shear are ``lens``'s plus offsets uniform in discs of radius ``lens_e_jitter``
      and ``shear_jitter``;
    - ``convention_probability``: the chance that an image reads its θ_E values at
      ``compat.z_source_convention`` and rescales deflections to the source, as lenstronomy's
      SimAPI does for DeepLenseSim's Models II–IV (subhalos then deflect 1/√β times more, the
      shear β times less, relative to the main lens); otherwise the physical reading. With θ_E
      drawn directly, luminosity or angular-diameter distances change nothing else;
    - ``pixel_scale_arcsec_range`` and ``psf_fwhm_arcsec_range`` (0 = no PSF);
    - ``source_magnitude_range``; ``bank_probability``: the chance of a real galaxy from
      ``source.bank`` (drawn as ``source`` says) rather than a Sérsic with radius and index in
      ``r_sersic_arcsec_range`` and ``n_sersic_range``, ellipticity ``source``'s plus an offset
      in a disc of radius ``source_e_jitter``;
    - ``lens_light_probability``: the chance of one Sérsic of lens light with magnitude, radius
      and index in the ``lens_light_*`` ranges (the lens's ellipticity);
    - ``noise_probability``: the chance of CCD noise (lenstronomy's, the ``instrument`` band's
      terms with the exposure multiplied by 10^U(``log10_exposure_scale_range``)); otherwise the
      image is noiseless;
    - ``log10_flux_scale_range``: the stored image is multiplied by 10^U(range) (a per-image
      normalisation of the network's input makes this irrelevant; it is here to make sure);
    - ``anchor_probability``: the chance that an image instead takes all the settings of one of
      ``anchors`` (drawn uniformly; names of :data:`presets.ANCHORS`: simulators whose images
      the model must handle, e.g. DeepLenseSim's Models I–IV on this grid), flux scale aside.
    """

    enabled: bool = False
    einstein_radius_arcsec_range: tuple[float, float] = (0.6, 2.0)
    lens_e_jitter: float = 0.1
    shear_jitter: float = 0.03
    convention_probability: float = 0.5
    pixel_scale_arcsec_range: tuple[float, float] = (0.07, 0.125)
    psf_fwhm_arcsec_range: tuple[float, float] = (0.0, 0.2)
    source_magnitude_range: tuple[float, float] = (18.0, 23.0)
    bank_probability: float = 0.5
    r_sersic_arcsec_range: tuple[float, float] = (0.1, 0.4)
    n_sersic_range: tuple[float, float] = (0.7, 2.5)
    source_e_jitter: float = 0.15
    lens_light_probability: float = 0.25
    lens_light_magnitude_range: tuple[float, float] = (17.0, 21.0)
    lens_light_r_sersic_arcsec_range: tuple[float, float] = (0.3, 1.0)
    lens_light_n_sersic_range: tuple[float, float] = (2.0, 4.0)
    noise_probability: float = 0.5
    log10_exposure_scale_range: tuple[float, float] = (-2.5, 0.5)
    log10_flux_scale_range: tuple[float, float] = (-2.0, 2.0)
    anchors: tuple[str, ...] = ()
    anchor_probability: float = 0.0

    def __post_init__(self) -> None:
        require_range("randomize.einstein_radius_arcsec_range", self.einstein_radius_arcsec_range,
                      low=0.05)  # fmt: skip
        require(0 <= self.lens_e_jitter < 0.5, "randomize.lens_e_jitter must be in [0, 0.5)")
        require(0 <= self.source_e_jitter < 0.5, "randomize.source_e_jitter must be in [0, 0.5)")
        require(0 <= self.shear_jitter < 0.3, "randomize.shear_jitter must be in [0, 0.3)")
        require_range("randomize.pixel_scale_arcsec_range", self.pixel_scale_arcsec_range,
                      low=1e-3)  # fmt: skip
        require_range("randomize.psf_fwhm_arcsec_range", self.psf_fwhm_arcsec_range, low=0.0)
        require_range("randomize.source_magnitude_range", self.source_magnitude_range)
        require_range("randomize.r_sersic_arcsec_range", self.r_sersic_arcsec_range, low=1e-3)
        require_range("randomize.n_sersic_range", self.n_sersic_range, low=0.2, high=8.0)
        require_range("randomize.lens_light_magnitude_range", self.lens_light_magnitude_range)
        require_range("randomize.lens_light_r_sersic_arcsec_range",
                      self.lens_light_r_sersic_arcsec_range, low=1e-3)  # fmt: skip
        require_range("randomize.lens_light_n_sersic_range", self.lens_light_n_sersic_range,
                      low=0.2, high=8.0)  # fmt: skip
        require_range("randomize.log10_exposure_scale_range", self.log10_exposure_scale_range)
        require_range("randomize.log10_flux_scale_range", self.log10_flux_scale_range)
        require(
            self.anchor_probability == 0 or bool(self.anchors),
            "randomize.anchor_probability > 0 needs randomize.anchors",
        )
        for name in ("convention_probability", "bank_probability", "lens_light_probability",
                     "noise_probability", "anchor_probability"):  # fmt: skip
            value = getattr(self, name)
            require(0 <= value <= 1, f"randomize.{name} must be in [0, 1], got {value}")


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
    lens_light: LensLightConfig = field(default_factory=LensLightConfig)
    cdm: CDMConfig = field(default_factory=CDMConfig)
    axion: AxionConfig = field(default_factory=AxionConfig)
    class_names: tuple[str, ...] = CLASS_NAMES
    deeplense_compat: bool = False
    compat: DeepLenseCompatConfig = field(default_factory=DeepLenseCompatConfig)
    randomize: RandomizeConfig = field(default_factory=RandomizeConfig)
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
        require(
            not (self.randomize.enabled and self.deeplense_compat),
            "randomize.enabled draws its own settings per image; it cannot be combined with "
            "deeplense_compat",
        )
        require(
            not self.randomize.enabled
            or self.compat.z_source_convention is not None
            or self.randomize.convention_probability == 0,
            "randomize.convention_probability > 0 needs compat.z_source_convention",
        )
        require(
            not (self.store_clean and self.per_image_views),
            "store_clean is available for the block-rendered configs only, not with per-image "
            "views (randomize, image-bank sources, lens light, Model IV lenses)",
        )

    @property
    def per_image_views(self) -> bool:
        """Whether images are rendered from per-image settings (:class:`sampling.ImageView`):
        domain randomisation, image-bank sources, lens light or Model IV's compat lenses."""
        compat = self.compat
        model_iv_lens = self.deeplense_compat and (
            compat.einstein_radius_arcsec is not None
            or compat.no_sub_velocity_dispersion_kms is not None
            or compat.normalize_max
        )
        return (
            self.randomize.enabled
            or self.source.kind == "image_bank"
            or bool(self.lens_light.magnitudes)
            or model_iv_lens
        )
