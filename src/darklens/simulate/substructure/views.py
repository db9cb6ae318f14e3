"""Per-image settings of the substructure simulator's general rendering path.

Images of configs with :attr:`SubstructureConfig.per_image_views` (domain randomisation,
real-galaxy sources, lens light, Model IV's compat lenses) are rendered from an
:class:`ImageView` each: every lens, instrument, source and noise setting of that image, resolved
to the values the renderer uses (effective Einstein radii, fluxes in image units). A view holds
the config's fixed values where nothing is drawn, so one code path renders them all.

Brightness conventions are lenstronomy's: a magnitude m gives 10^(−0.4 (m − zero point)) e-/s
in total; a Sérsic's amplitude is its surface brightness at R_sersic (per arcsec²) and an image
bank source's flux its total flux.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from darklens.data.image_bank import ImageBank, load_image_bank
from darklens.simulate.func.cosmology import (
    ARCSEC_PER_RADIAN,
    SPEED_OF_LIGHT_KMS,
    deflection_rescaling,
    lensing_distances_mpc,
    point_mass_einstein_radius_arcsec,
)
from darklens.simulate.func.noise import ccd_background_sigma
from darklens.simulate.func.profiles import sersic_unit_norm
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.physics import deflection_scale, distance_kind

NOISE_MODELS = ("none", "ccd", "counts", "twice")


@dataclass(frozen=True)
class LightComponent:
    """One elliptical Sérsic (lenstronomy's R_sersic, e1, e2); amplitude at R_sersic."""

    amplitude: float
    r_sersic_arcsec: float
    n_sersic: float
    e1: float
    e2: float


@dataclass
class ImageView:
    """Everything one image is rendered with (angles in arcsec, fluxes in image units).

    The image is rendered on ``num_pix`` × ``num_pix`` pixels of ``pixel_scale_arcsec``; when
    that is not the dataset's grid, the observed image (noise included) is resized to it as a
    model's preprocessing resizes images (bilinear, anti-aliased).

    ``einstein_radius_arcsec``, ``gamma*`` and ``point_rein_per_sqrt_msun`` are effective: any
    z_source_convention rescaling is included. ``source`` is the Sérsic of a Sérsic source (its
    amplitude in ``source.amplitude``); a bank source is image ``bank_index`` of the bank with
    total flux ``bank_flux``, its side spanning ``bank_box_arcsec``, rotated by
    ``bank_angle_rad`` and mirrored when ``bank_flip``. ``noise``: one of :data:`NOISE_MODELS`
    (``twice``: model + model, DeepLenseSim's Models II/III), with ``background_sigma`` (CCD:
    e-/s per pixel; counts: background rms) and the exposure ``exposure_s``. The stored image
    is multiplied by ``flux_scale``, and clipped at 0 and divided by its maximum when
    ``normalize_max``.
    """

    num_pix: int
    einstein_radius_arcsec: float
    lens_e1: float
    lens_e2: float
    gamma1: float
    gamma2: float
    point_rein_per_sqrt_msun: float
    pixel_scale_arcsec: float
    psf_fwhm_arcsec: float
    source: LightComponent | None
    bank_index: int
    bank_flux: float
    bank_box_arcsec: float
    bank_angle_rad: float
    bank_flip: bool
    lens_light: tuple[LightComponent, ...]
    noise: str
    background_sigma: float
    exposure_s: float
    flux_scale: float = 1.0
    normalize_max: bool = False
    sigma_v_kms: float = math.nan  # the SIS's velocity dispersion when θ_E was drawn from it
    anchor: int = -1  # domain randomisation: which of randomize.anchors gave the settings

    @property
    def source_kind(self) -> str:
        return "sersic" if self.source is not None else "image_bank"


# Truth columns of per-image views: name → (shape, dtype).
VIEW_TRUTH_COLUMNS: dict[str, tuple[tuple[int, ...], str]] = {
    "einstein_radius_arcsec": ((), "float64"),
    "sigma_v_kms": ((), "float64"),
    "pixel_scale_arcsec": ((), "float64"),
    "psf_fwhm_arcsec": ((), "float64"),
    "source_bank_index": ((), "int32"),
    "source_angle_rad": ((), "float64"),
    "noisy": ((), "int32"),
    "flux_scale": ((), "float64"),
    "anchor_index": ((), "int32"),
}


def view_truth(views: list[ImageView]) -> dict[str, np.ndarray]:
    """The :data:`VIEW_TRUTH_COLUMNS` of a block of images."""
    return {
        "einstein_radius_arcsec": np.array([v.einstein_radius_arcsec for v in views]),
        "sigma_v_kms": np.array([v.sigma_v_kms for v in views]),
        "pixel_scale_arcsec": np.array([v.pixel_scale_arcsec for v in views]),
        "psf_fwhm_arcsec": np.array([v.psf_fwhm_arcsec for v in views]),
        "source_bank_index": np.array([v.bank_index for v in views], dtype=np.int32),
        "source_angle_rad": np.array([v.bank_angle_rad for v in views]),
        "noisy": np.array([v.noise in ("ccd", "counts") for v in views], dtype=np.int32),
        "flux_scale": np.array([v.flux_scale for v in views]),
        "anchor_index": np.array([v.anchor for v in views], dtype=np.int32),
    }


def uses_bank(config: SubstructureConfig) -> bool:
    """Whether images may take their source from the image bank."""
    if config.randomize.enabled:
        return config.randomize.bank_probability > 0
    return config.source.kind == "image_bank"


def magnitude_flux(magnitude: float, zero_point: float) -> float:
    """Total flux in e-/s of a source of AB ``magnitude`` (lenstronomy's ``magnitude2cps``)."""
    return 10.0 ** (-0.4 * (magnitude - zero_point))


def sersic_component(
    flux: float, r_sersic_arcsec: float, n_sersic: float, e1: float, e2: float
) -> LightComponent:
    """A Sérsic of total ``flux`` (its amplitude at R_sersic, lenstronomy's convention)."""
    amplitude = flux * float(sersic_unit_norm(np.float64(r_sersic_arcsec), np.float64(n_sersic)))
    return LightComponent(amplitude, r_sersic_arcsec, n_sersic, e1, e2)


def image_bank(config: SubstructureConfig) -> ImageBank:
    """The config's image bank (read once, cached by :func:`load_image_bank`)."""
    src = config.source
    return load_image_bank(src.bank, src.bank_channel, src.bank_background)


def sis_einstein_radius_arcsec(
    sigma_v_kms: float, z_lens: float, z_source: float, h0: float, omega_m: float
) -> float:
    """θ_E = 4π (σ_v/c)² D_ls/D_s of a singular isothermal sphere (angular-diameter distances)."""
    _, d_s, d_ls = lensing_distances_mpc(z_lens, z_source, h0, omega_m)
    return 4.0 * math.pi * (sigma_v_kms / SPEED_OF_LIGHT_KMS) ** 2 * d_ls / d_s * ARCSEC_PER_RADIAN


@dataclass(frozen=True)
class _Fixed:
    """What a non-randomised config gives every image."""

    einstein_radius_arcsec: float
    beta: float
    point_rein_per_sqrt_msun: float
    source: LightComponent | None
    bank_flux: float
    lens_light: tuple[LightComponent, ...]
    noise: str
    background_sigma: float


@lru_cache(maxsize=16)
def _fixed(config: SubstructureConfig) -> _Fixed:
    lens, inst, src, compat = config.lens, config.instrument, config.source, config.compat
    beta = deflection_scale(config)
    rein_per_sqrt_msun = float(
        point_mass_einstein_radius_arcsec(
            1.0, lens.z_lens, lens.z_source, lens.h0, lens.omega_m, distance_kind(config)
        )
    )
    main = rein_per_sqrt_msun * math.sqrt(lens.mass_msun)
    if config.deeplense_compat and compat.einstein_radius_arcsec is not None:
        main = compat.einstein_radius_arcsec
    zero_point = inst.magnitude_zero_point
    flux = magnitude_flux(src.magnitude, zero_point) if src.magnitude is not None else src.amplitude
    source = None
    if src.kind == "sersic":
        source = sersic_component(flux, src.r_sersic_arcsec, src.n_sersic, src.e1, src.e2)
        if src.amplitude is not None:
            source = LightComponent(
                src.amplitude, src.r_sersic_arcsec, src.n_sersic, src.e1, src.e2
            )
    light = config.lens_light
    lens_light = tuple(
        sersic_component(magnitude_flux(m, zero_point), r, n, e1, e2)
        for m, r, n, e1, e2 in zip(
            light.magnitudes, light.r_sersic_arcsec, light.n_sersic, light.e1, light.e2,
            strict=True,
        )
    )  # fmt: skip
    noise = inst.noise
    if config.deeplense_compat and compat.twice_noiseless_model:
        noise = "twice"
    sigma = inst.background_sigma if noise == "ccd" else inst.background_rms
    return _Fixed(
        einstein_radius_arcsec=main * beta,
        beta=beta,
        point_rein_per_sqrt_msun=rein_per_sqrt_msun * math.sqrt(beta),
        source=source,
        bank_flux=float(flux),
        lens_light=lens_light,
        noise=noise,
        background_sigma=float(sigma),
    )


def draw_view(
    config: SubstructureConfig, label: int, rng: np.random.Generator, exposure_s: float
) -> ImageView:
    """One image's view: the config's fixed settings (with the image's exposure), or
    domain-randomised draws."""
    if config.randomize.enabled:
        return _draw_randomized(config, label, rng)
    fixed, lens, src = _fixed(config), config.lens, config.source
    view = ImageView(
        num_pix=config.instrument.num_pix,
        einstein_radius_arcsec=fixed.einstein_radius_arcsec,
        lens_e1=lens.e1,
        lens_e2=lens.e2,
        gamma1=lens.gamma1 * fixed.beta,
        gamma2=lens.gamma2 * fixed.beta,
        point_rein_per_sqrt_msun=fixed.point_rein_per_sqrt_msun,
        pixel_scale_arcsec=config.instrument.pixel_scale_arcsec,
        psf_fwhm_arcsec=config.instrument.psf_fwhm_arcsec,
        source=fixed.source,
        bank_index=-1,
        bank_flux=fixed.bank_flux,
        bank_box_arcsec=src.bank_box_arcsec,
        bank_angle_rad=0.0,
        bank_flip=False,
        lens_light=fixed.lens_light,
        noise=fixed.noise,
        background_sigma=fixed.background_sigma,
        exposure_s=exposure_s,
        normalize_max=config.deeplense_compat and config.compat.normalize_max,
    )
    if src.kind == "image_bank":
        _draw_bank(config, view, rng, augment=not config.deeplense_compat)
    sigma_v = config.compat.no_sub_velocity_dispersion_kms
    if config.deeplense_compat and sigma_v is not None and config.class_names[label] == "no_sub":
        # Model IV's sim_no_sub.py: an SIS of σ_v ~ N(mean, sd), no shear.
        velocity = float(rng.normal(*sigma_v))
        view.sigma_v_kms = velocity
        z_source = config.compat.no_sub_sigma_v_z_source or lens.z_source
        view.einstein_radius_arcsec = sis_einstein_radius_arcsec(
            velocity, lens.z_lens, z_source, lens.h0, lens.omega_m
        )
        view.lens_e1 = view.lens_e2 = view.gamma1 = view.gamma2 = 0.0
    return view


def _draw_bank(
    config: SubstructureConfig, view: ImageView, rng: np.random.Generator, augment: bool
) -> None:
    """Which bank image, its rotation, mirroring and size (drawn in this order)."""
    src = config.source
    view.bank_index = int(rng.integers(len(image_bank(config))))
    angle = float(rng.uniform(-math.pi, math.pi))
    view.bank_angle_rad = angle if src.bank_rotate else 0.0
    flip = bool(rng.random() < 0.5)
    view.bank_flip = flip and src.bank_flip and augment
    low, high = src.bank_scale_range
    scale = math.exp(rng.uniform(math.log(low), math.log(high)))
    view.bank_box_arcsec = src.bank_box_arcsec * (scale if augment else 1.0)


def _around(rng: np.random.Generator, x: float, y: float, radius: float) -> tuple[float, float]:
    """(x, y) plus a point uniform in the disc of ``radius`` (two draws)."""
    r = radius * math.sqrt(rng.random())
    angle = rng.uniform(0.0, 2.0 * math.pi)
    return x + r * math.cos(angle), y + r * math.sin(angle)


def _draw_anchored(
    config: SubstructureConfig, label: int, rng: np.random.Generator
) -> ImageView | None:
    """With ``randomize.anchor_probability``, the view of one of the anchors (its own draws:
    exposure, bank image, σ_v), with the flux scale drawn last; else None."""
    from darklens.simulate.substructure.presets import get_anchor

    rand = config.randomize
    if not rand.anchors or rng.random() >= rand.anchor_probability:
        return None
    which = int(rng.integers(len(rand.anchors)))
    anchor = get_anchor(rand.anchors[which])
    inst = anchor.instrument
    exposure = inst.total_exposure_s
    if inst.noise == "counts":
        exposure = float(10.0 ** rng.uniform(*inst.log10_exposure_range))
    view = draw_view(anchor, label, rng, exposure)
    view.anchor = which
    view.flux_scale = 10.0 ** rng.uniform(*rand.log10_flux_scale_range)
    return view


def _draw_randomized(
    config: SubstructureConfig, label: int, rng: np.random.Generator
) -> ImageView:
    """Domain-randomised settings (see :class:`RandomizeConfig`), drawn in a fixed order."""
    anchored = _draw_anchored(config, label, rng)
    if anchored is not None:
        return anchored
    rand, lens, inst, compat = config.randomize, config.lens, config.instrument, config.compat
    theta_e = float(rng.uniform(*rand.einstein_radius_arcsec_range))
    beta = 1.0
    if rng.random() < rand.convention_probability:
        beta = deflection_rescaling(
            lens.z_lens, lens.z_source, compat.z_source_convention, compat.convention_h0,
            compat.convention_omega_m,
        )  # fmt: skip
    lens_e1, lens_e2 = _around(rng, lens.e1, lens.e2, rand.lens_e_jitter)
    gamma1, gamma2 = _around(rng, lens.gamma1, lens.gamma2, rand.shear_jitter)
    pixel_scale = float(rng.uniform(*rand.pixel_scale_arcsec_range))
    psf_fwhm = float(rng.uniform(*rand.psf_fwhm_arcsec_range))
    source_flux = magnitude_flux(
        rng.uniform(*rand.source_magnitude_range), inst.magnitude_zero_point
    )
    use_bank = bool(rng.random() < rand.bank_probability)
    r_sersic = float(rng.uniform(*rand.r_sersic_arcsec_range))
    n_sersic = float(rng.uniform(*rand.n_sersic_range))
    src = config.source
    source_e1, source_e2 = _around(rng, src.e1, src.e2, rand.source_e_jitter)
    has_light = bool(rng.random() < rand.lens_light_probability)
    light = sersic_component(
        magnitude_flux(rng.uniform(*rand.lens_light_magnitude_range), inst.magnitude_zero_point),
        float(rng.uniform(*rand.lens_light_r_sersic_arcsec_range)),
        float(rng.uniform(*rand.lens_light_n_sersic_range)),
        lens_e1,
        lens_e2,
    )
    noisy = bool(rng.random() < rand.noise_probability)
    exposure_scale = 10.0 ** rng.uniform(*rand.log10_exposure_scale_range)
    flux_scale = 10.0 ** rng.uniform(*rand.log10_flux_scale_range)
    view = ImageView(
        num_pix=inst.num_pix,
        einstein_radius_arcsec=theta_e,
        lens_e1=lens_e1,
        lens_e2=lens_e2,
        gamma1=gamma1 * beta,
        gamma2=gamma2 * beta,
        # θ_E read at the convention is θ_E/β; a point mass's θ_E² scales with β like the SIE's θ_E
        point_rein_per_sqrt_msun=theta_e / math.sqrt(beta * lens.mass_msun),
        pixel_scale_arcsec=pixel_scale,
        psf_fwhm_arcsec=psf_fwhm,
        source=None
        if use_bank
        else sersic_component(source_flux, r_sersic, n_sersic, source_e1, source_e2),
        bank_index=-1,
        bank_flux=source_flux,
        bank_box_arcsec=config.source.bank_box_arcsec,
        bank_angle_rad=0.0,
        bank_flip=False,
        lens_light=(light,) if has_light else (),
        noise="ccd" if noisy else "none",
        background_sigma=float(
            ccd_background_sigma(
                pixel_scale,
                inst.exposure_time_s * exposure_scale,
                inst.num_exposures,
                inst.sky_brightness_mag_arcsec2,
                inst.magnitude_zero_point,
                inst.read_noise_e,
            )
        ),  # fmt: skip
        exposure_s=inst.total_exposure_s * exposure_scale,
        flux_scale=flux_scale,
    )
    _draw_bank(config, view, rng, augment=True)
    if not use_bank:
        view.bank_index = -1
    return view
