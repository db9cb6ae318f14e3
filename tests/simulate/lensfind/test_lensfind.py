"""Lens-finding simulator: rendering vs lenstronomy, look-alikes, layout, reproducibility, truth,
CLI."""

import dataclasses
import hashlib
import math

import numpy as np
import pytest
import torch
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.SimulationAPI.observation_api import SingleBand
from lenstronomy.SimulationAPI.sim_api import SimAPI
from lenstronomy.Util.param_util import phi_q2_ellipticity
from scipy import ndimage
from typer.testing import CliRunner

from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.simulate.api import get_any_preset, preset_names, resolve_config, simulate
from darklens.simulate.func.cosmology import kpc_per_arcsec
from darklens.simulate.func.profiles import (
    arc_unit_norm,
    arcs_unit,
    gaussian_clumps_unit,
    ring_unit,
    ring_unit_norm,
    sersic_unit,
    sersic_unit_norm,
    spiral_arm_pattern,
)
from darklens.simulate.func.psf import gaussian_kernel_1d
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    counter_keys,
    image_rng,
    keys_tensor,
)
from darklens.simulate.lensfind import (
    LENSFIND_PRESETS,
    LOOKALIKE_KINDS,
    LensFindConfig,
    LensFindRenderer,
    draw_lensfind_params,
    get_lensfind_preset,
    lensfind_layout,
)
from darklens.simulate.lensfind.config import NON_LENS_ONLY_KINDS
from darklens.simulate.lensfind.kind import _draw_block, render_block
from darklens.simulate.lensfind.noise import lensed_snr, noise_levels, observe
from darklens.simulate.lensfind.render import _smallest_scale
from darklens.simulate.lensfind.sampling import draw_disc_lookalike, draw_header, without_source

PRESET_NAMES = ["lensfind_space", "lensfind_ground", "lensfind_deeplense", "lensfind_lsst"]
KIND = {name: code for code, name in enumerate(LOOKALIKE_KINDS)}
# float32 rendering agrees with lenstronomy (float64) to this fraction of each band's peak
# (measured: ≤ 3e-6 for the total image; a 0.015″ source sampled every 0.1″ reaches 1.1e-5 in
# its own image: float32 ray shooting's ~1e-7″ errors times its brightness gradient, ~100/″).
FLOAT32_TOLERANCE = 3e-5
runner = CliRunner()


def noiseless(name: str, **overrides) -> LensFindConfig:
    return get_lensfind_preset(name).override({"instrument.noise": "none", **overrides})


def find_params(config, label: int, kind: int, seed: int = 0, count: int = 1):
    """The first ``count`` images (by index) with this label and look-alike kind."""
    found = []
    for index in range(2000):
        p = draw_lensfind_params(config, label, image_rng(seed, index, PARAMS_STREAM))
        if p.kind == kind:
            found.append(p)
            if len(found) == count:
                return found
    raise AssertionError(f"no image of kind {kind} in 2000 draws")


# -- independent reference: lenstronomy --------------------------------------------------------
def _sersic_kwargs(light) -> dict:
    e1, e2 = phi_q2_ellipticity(light.phi, light.q)
    return {
        "R_sersic": light.r_sersic,
        "n_sersic": light.n,
        "e1": e1,
        "e2": e2,
        "center_x": light.x,
        "center_y": light.y,
    }


def _lens_kwargs(deflector) -> list[dict]:
    e1, e2 = phi_q2_ellipticity(deflector.phi, deflector.q)
    return [
        {
            "theta_E": deflector.theta_e,
            "e1": e1,
            "e2": e2,
            "center_x": deflector.x,
            "center_y": deflector.y,
        },
        {
            "gamma1": deflector.gamma1,
            "gamma2": deflector.gamma2,
            "ra_0": deflector.x,
            "dec_0": deflector.y,
        },
    ]


def _gaussian_kwargs(clumps) -> list[dict]:
    """lenstronomy GAUSSIAN kwargs (amp = share of the component's flux) of the used slots."""
    if clumps is None:
        return []
    return [
        {"amp": float(w), "sigma": float(s), "center_x": float(x), "center_y": float(y)}
        for x, y, s, w in zip(clumps.x, clumps.y, clumps.sigma, clumps.weight, strict=True)
        if w > 0
    ]


def _scaled(kwargs: list[dict], clumps, band: int, zero_point: float) -> list[dict]:
    """The clumps' kwargs with amp in e-/s (lenstronomy's GAUSSIAN amp is the total flux)."""
    if not kwargs:
        return []
    flux = 10.0 ** (-0.4 * (clumps.magnitudes[band] - zero_point))
    return [{**k, "amp": k["amp"] * flux} for k in kwargs]


def lenstronomy_images(
    config: LensFindConfig, p, supersampling: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(full image, lensed-source-only image) [bands, H, W] from lenstronomy's ImageModel, with
    amplitudes converted from magnitudes by lenstronomy's SimAPI (supersampling: the config's
    unless given)."""
    inst = config.instrument
    n, pix = inst.num_pix, inst.pixel_scale_arcsec
    corner = -(n - 1) / 2.0 * pix
    data = ImageData(
        image_data=np.zeros((n, n)),
        ra_at_xy_0=corner,
        dec_at_xy_0=corner,
        transform_pix2angle=np.array([[pix, 0.0], [0.0, pix]]),
    )
    lights = [p.galaxy] + ([p.companion] if p.companion is not None else [])
    lens_clumps = _gaussian_kwargs(p.clumps)
    source_clumps = _gaussian_kwargs(p.source_clumps)
    full, source_only = [], []
    for b, band in enumerate(inst.bands):
        seeing = float(p.seeing_fwhm_arcsec[b])
        kwargs_band = {
            "pixel_scale": pix,
            "exposure_time": band.exposure_time_s,
            "num_exposures": band.num_exposures,
            "magnitude_zero_point": band.magnitude_zero_point,
            "sky_brightness": band.sky_brightness_mag_arcsec2,
            "read_noise": band.read_noise_e,
            "ccd_gain": band.ccd_gain,
            "seeing": seeing,
            "psf_type": "GAUSSIAN",
        }
        light_models = ["SERSIC_ELLIPSE"] * len(lights)
        sim = SimAPI(
            n,
            kwargs_band,
            {"lens_light_model_list": light_models, "source_light_model_list": ["SERSIC_ELLIPSE"]},
        )
        kwargs_light, kwargs_source, _ = sim.magnitude2amplitude(
            [{"magnitude": c.magnitudes[b], **_sersic_kwargs(c)} for c in lights],
            [{"magnitude": p.source.magnitudes[b], **_sersic_kwargs(p.source)}],
        )
        kwargs_light += _scaled(lens_clumps, p.clumps, b, band.magnitude_zero_point)
        kwargs_source += _scaled(source_clumps, p.source_clumps, b, band.magnitude_zero_point)
        psf = PSF(
            psf_type="GAUSSIAN",
            fwhm=seeing,
            pixel_size=pix,
            truncation=inst.psf_truncation_sigma,
        )
        model = ImageModel(
            data,
            psf,
            lens_model_class=LensModel(["SIE", "SHEAR"]),
            source_model_class=LightModel(["SERSIC_ELLIPSE"] + ["GAUSSIAN"] * len(source_clumps)),
            lens_light_model_class=LightModel(light_models + ["GAUSSIAN"] * len(lens_clumps)),
            kwargs_numerics={
                "supersampling_factor": supersampling or inst.supersampling,
                "supersampling_convolution": False,
            },
        )
        kwargs_lens = _lens_kwargs(p.deflector)
        full.append(model.image(kwargs_lens, kwargs_source, kwargs_light))
        source_only.append(model.image(kwargs_lens, kwargs_source, None, lens_light_add=False))
    return np.stack(full), np.stack(source_only)


def _resolved(config: LensFindConfig, p) -> bool:
    """Whether the source's smallest scale spans two rendering sub-pixels (no resampling)."""
    inst = config.instrument
    return _smallest_scale(p) >= 2 * inst.pixel_scale_arcsec / inst.supersampling


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_lens_rendering_matches_lenstronomy_per_band(name):
    """Lenses with clumpy and smooth sources, and with a clumpy line-of-sight galaxy, at the same
    sub-pixel sampling (sources that span a sub-pixel; smaller ones: the next test)."""
    big_sources = {
        "source.min_radius_arcsec": "0.3",
        "source.clump_size_fraction_range": "[0.5, 1]",
    }
    config = noiseless(name, **big_sources)
    lenses = [p for p in find_params(config, 1, KIND["none"], count=40) if _resolved(config, p)]
    params = [next(p for p in lenses if p.source_clumps is not None)]
    params.append(next(p for p in lenses if p.source_clumps is None))
    los = find_params(config, 1, KIND["line_of_sight"], count=40)
    params.append(next(p for p in los if p.clumps is not None and _resolved(config, p)))
    rendered = LensFindRenderer(config).render(params)
    for j, p in enumerate(params):
        full, source_only = lenstronomy_images(config, p)
        for b in range(len(config.instrument.bands)):
            peak = np.abs(full[b]).max()
            assert np.abs(rendered.models[j, b] - full[b]).max() <= FLOAT32_TOLERANCE * peak
            src_peak = np.abs(source_only[b]).max()
            assert src_peak > 0
            err = np.abs(rendered.source_models[j, b] - source_only[b]).max()
            assert err <= FLOAT32_TOLERANCE * src_peak


@pytest.mark.parametrize("name", ["lensfind_space", "lensfind_ground"])
def test_sources_smaller_than_a_sub_pixel_are_resampled(name):
    """A lensed source a few times smaller than a sub-pixel: its resampled image matches
    lenstronomy at a sampling as fine as ours after resampling (1 % of the peak, 1 % of the
    flux), where one sample per sub-pixel misplaces its flux."""
    config = noiseless(name, **{"instrument.num_pix": "48"})
    inst = config.instrument
    step = inst.pixel_scale_arcsec / inst.supersampling
    p = next(
        p
        for p in find_params(config, 1, KIND["none"], count=200)
        if _smallest_scale(p) < step / 3 and p.deflector.theta_e < 1.5
    )
    ours = LensFindRenderer(config).render([p]).source_models[0]
    fine, _ = lenstronomy_images(config, p, supersampling=inst.supersampling * 8)
    _, fine_source = lenstronomy_images(config, p, supersampling=inst.supersampling * 8)
    ref = inst.reference_index
    assert ours[ref].sum() == pytest.approx(fine_source[ref].sum(), rel=0.01)
    assert np.abs(ours[ref] - fine_source[ref]).max() <= 0.01 * fine_source[ref].max()
    assert fine.shape == fine_source.shape


def _lenstronomy_magnification(p, step_fraction: float = 0.2) -> float:
    """Lensed / unlensed flux of the whole source (Sérsic + clumps) on a fine lenstronomy grid."""
    d, s = p.deflector, p.source
    clumps = _gaussian_kwargs(p.source_clumps)
    names = ["SERSIC_ELLIPSE"] + ["GAUSSIAN"] * len(clumps)
    light, lens_model = LightModel(names), LensModel(["SIE", "SHEAR"])
    sersic_flux = 10 ** (-0.4 * s.magnitudes[0])
    clump_flux = 10 ** (-0.4 * p.source_clumps.magnitudes[0]) if clumps else 0.0
    kwargs = [{"amp": 1.0, **_sersic_kwargs(s)}]
    kwargs[0]["amp"] = sersic_flux / LightModel(["SERSIC_ELLIPSE"]).total_flux(kwargs)[0]
    kwargs += [{**k, "amp": k["amp"] * clump_flux} for k in clumps]
    smallest = min([s.r_sersic * s.q**0.5] + [k["sigma"] for k in clumps])
    half = 1.5 * (d.theta_e + math.hypot(s.x - d.x, s.y - d.y)) + 12 * s.r_sersic / s.q**0.5
    step = min(0.01, smallest * step_fraction)
    axis = np.arange(-half, half, step) + step / 2
    total = 0.0
    for row in np.array_split(axis, max(1, axis.size // 400)):  # bounded memory
        yy, xx = np.meshgrid(row + d.y, axis + d.x, indexing="ij")
        bx, by = lens_model.ray_shooting(xx.ravel(), yy.ravel(), _lens_kwargs(d))
        total += light.surface_brightness(bx, by, kwargs).sum() * step**2
    return total / (sersic_flux + clump_flux)


def test_magnification_matches_a_fine_lenstronomy_ray_trace():
    """Sources of the population, from 0.01″ to 0.3″ across, smooth and clumpy: the coarse grid
    with refined bright cells keeps μ within 1.5 % of a grid 5× finer than the source."""
    config = noiseless("lensfind_space")
    params = [draw_lensfind_params(config, 1, image_rng(5, i, PARAMS_STREAM)) for i in range(40)]
    sizes = np.array([p.source.r_sersic for p in params])
    picked = [params[i] for i in np.argsort(sizes)[[0, 3, 20, 39]]]
    picked.append(next(p for p in params if p.source_clumps is not None))
    ours = LensFindRenderer(config).magnification(picked)
    assert min(p.source.r_sersic for p in picked) < 0.02  # the refinement is exercised
    for mu, p in zip(ours, picked, strict=True):
        assert mu == pytest.approx(_lenstronomy_magnification(p), rel=0.015)


def test_a_systems_magnification_does_not_depend_on_the_others_in_its_batch():
    """The refinement traces several systems' points together: each system's μ is bit-identical
    to the one it gets alone, whatever it is batched with (and in whichever order)."""
    config = noiseless("lensfind_space")
    params = [draw_lensfind_params(config, 1, image_rng(6, i, PARAMS_STREAM)) for i in range(24)]
    renderer = LensFindRenderer(config)
    together = renderer.magnification(params)
    alone = np.array([renderer.magnification([p])[0] for p in params])
    reversed_order = renderer.magnification(params[::-1])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(reversed_order, alone)


def test_total_magnification_is_never_below_one():
    """A lens with κ ≥ 0 (plus external shear from distant mass) cannot demagnify a source in
    total: every source has a minimum image with μ ≥ 1 (Schneider 1984). With sources up to 3 θ_E
    away, many are singly imaged and barely magnified, so the bound is approached, not exceeded."""
    config = noiseless(
        "lensfind_space", **{"instrument.num_pix": "16", "source.max_offset_theta_e": "3.0"}
    )
    params = [draw_lensfind_params(config, 1, image_rng(1, i, PARAMS_STREAM)) for i in range(60)]
    mu = LensFindRenderer(config).magnification(params)
    assert np.all(np.isfinite(mu))
    assert mu.min() >= 0.995
    assert mu.min() < 1.5  # weakly lensed sources are really there


# -- light profiles ------------------------------------------------------------------------------
def _fine_grid(half: float, step: float):
    axis = np.arange(-half, half, step) + step / 2
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return torch.tensor(xx.ravel())[None], torch.tensor(yy.ravel())[None], step**2


def _column(value: float) -> torch.Tensor:
    return torch.tensor([[value]], dtype=torch.float64)


def test_unit_profiles_integrate_to_one():
    x, y, area = _fine_grid(10.0, 0.015)
    r, n, q = 0.8, 1.0, 0.5
    disc = {
        "x": _column(0.3),
        "y": _column(-0.2),
        "q": _column(q),
        "phi": _column(0.4),
        "n": _column(n),
        "r_major": _column(r / q**0.5),
        "norm": _column(float(sersic_unit_norm(np.array(r), np.array(n)))),
        "k": _column(1.9992 * n - 0.3271),
    }
    assert float(sersic_unit(disc, x, y).sum()) * area == pytest.approx(1.0, abs=2e-3)
    arms = {"n_arms": _column(2.0), "pitch": _column(math.radians(20)), "phase": _column(1.0)}
    spiral = sersic_unit(disc, x, y) * spiral_arm_pattern(disc, arms, x, y)
    assert float(spiral.sum()) * area == pytest.approx(1.0, abs=5e-3)
    assert float(spiral.std()) > 1.2 * float(sersic_unit(disc, x, y).std())  # arms are there
    ring = {
        "x": _column(0.0),
        "y": _column(0.1),
        "q": _column(0.7),
        "phi": _column(1.2),
        "radius": _column(1.5),
        "width": _column(0.3),
        "norm": _column(float(ring_unit_norm(np.array(1.5), np.array(0.3), np.array(0.7)))),
    }
    assert float(ring_unit(ring, x, y).sum()) * area == pytest.approx(1.0, abs=2e-3)
    # two arcs (one a near-full ring) sharing the flux 0.3 / 0.7, and an empty slot
    radius, width, qa = np.array([2.0, 1.2, 1.0]), np.array([0.2, 0.1, 1.0]), np.array([1, 0.6, 1])
    extent = np.array([0.4, 3.0, 1.0])
    arcs = {
        "x": torch.tensor([[0.5, -0.3, 0.0]], dtype=torch.float64),
        "y": torch.tensor([[0.0, 0.4, 0.0]], dtype=torch.float64),
        "q": torch.tensor(qa[None], dtype=torch.float64),
        "phi": torch.tensor([[0.0, 0.7, 0.0]], dtype=torch.float64),
        "radius": torch.tensor(radius[None], dtype=torch.float64),
        "width": torch.tensor(width[None], dtype=torch.float64),
        "angle": torch.tensor([[2.5, -1.0, 0.0]], dtype=torch.float64),
        "extent": torch.tensor(extent[None], dtype=torch.float64),
        "norm": torch.tensor(arc_unit_norm(radius, width, qa, extent)[None], dtype=torch.float64),
        "weight": torch.tensor([[0.3, 0.7, 0.0]], dtype=torch.float64),
    }
    assert float(arcs_unit(arcs, x, y).sum()) * area == pytest.approx(1.0, abs=2e-3)
    clumps = {
        "x": torch.tensor([[0.2, -1.0, 0.0]], dtype=torch.float64),
        "y": torch.tensor([[0.0, 0.5, 0.0]], dtype=torch.float64),
        "sigma": torch.tensor([[0.1, 0.3, 1.0]], dtype=torch.float64),
        "weight": torch.tensor([[0.25, 0.75, 0.0]], dtype=torch.float64),
    }
    assert float(gaussian_clumps_unit(clumps, x, y).sum()) * area == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("fwhm", [0.18, 0.7, 1.1])
def test_psf_kernel_is_scipy_gaussian_filter(fwhm):
    pixel, truncation = 0.2, 5.0
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2))) / pixel
    delta = np.zeros(61)
    delta[30] = 1.0
    reference = ndimage.gaussian_filter1d(delta, sigma, truncate=truncation, mode="nearest")
    kernel = gaussian_kernel_1d(fwhm, pixel, truncation, radius_px=30)
    np.testing.assert_allclose(kernel, reference, atol=1e-15)


# -- look-alikes -------------------------------------------------------------------------------
def _visible_lookalike(p, kind: str, ref: int) -> bool:
    """Whether an added neighbour / galaxy / star is within 2 mag of the central galaxy."""
    central = p.galaxy.magnitudes[ref]
    if kind in ("neighbour", "line_of_sight"):
        return p.companion.magnitudes[ref] < central + 2
    if kind == "star":
        return p.stars.magnitudes[:, ref].min() < central + 2
    return True


RENDERED_LOOKALIKES = [k for k in LOOKALIKE_KINDS[1:] if k != "undetectable_lens"]


@pytest.mark.parametrize("kind", RENDERED_LOOKALIKES)
def test_each_lookalike_renders_finite_and_unlike_a_plain_galaxy(kind):
    config = noiseless("lensfind_ground", **{"instrument.num_pix": "64"})
    ref = config.instrument.reference_index
    index, p = next(
        (i, p)
        for i in range(2000)
        if (p := draw_lensfind_params(config, 0, image_rng(4, i, PARAMS_STREAM))).kind == KIND[kind]
        and _visible_lookalike(p, kind, ref)
    )
    # The same draw with every non-lens forced to be a plain galaxy (the header is shared, and
    # so is the first system for the kinds that draw one).
    plain_config = config.override({"lookalikes.non_lens_fractions": str([1] + [0] * 8)})
    plain = draw_lensfind_params(plain_config, 0, image_rng(4, index, PARAMS_STREAM))
    assert plain.kind == 0 and plain.seeing_fwhm_arcsec.tolist() == p.seeing_fwhm_arcsec.tolist()
    renderer = LensFindRenderer(config)
    images = renderer.render([without_source(p), without_source(plain)])
    look, base = images.models
    assert np.all(np.isfinite(look)) and look.min() >= 0
    assert np.abs(look - base).max() > 0.05 * base.max()
    assert not np.any(images.source_models)  # no lensed source in a non-lens
    assert np.all(np.isnan(images.magnification))


def test_disc_lookalikes_are_as_bright_as_lens_galaxies_and_sized_as_discs():
    """A disc look-alike takes the apparent magnitude it is given (the lens galaxy of its
    image's system) and a size from the late-type relation at its own redshift and luminosity,
    not from an elliptical: R50 ≈ 1.5–6 kpc whatever the target magnitude."""
    config = get_lensfind_preset("lensfind_space").override(
        {"lookalikes.non_lens_fractions": str([0, 0, 0, 0, 1] + [0] * 4)}
    )
    offsets, sizes = [], []
    for i, target in enumerate(np.linspace(15.0, 25.0, 120)):
        rng = image_rng(2, i, PARAMS_STREAM)
        p = draw_disc_lookalike(config, draw_header(config, 0, rng), float(target), rng)
        assert p.kind == KIND["spiral"] and p.deflector is None
        assert p.arms is not None and p.clumps is not None
        offsets.append(p.central_magnitudes()[0] - target)
        kpc = kpc_per_arcsec(p.z_lens, config.h0, config.omega_m)
        sizes.append(p.disc.r_sersic / math.sqrt(p.disc.q) * kpc)
        assert p.disc.q > np.cos(np.radians(config.lookalikes.spiral_max_inclination_deg)) - 1e-9
    assert abs(np.median(offsets)) < 0.1 and np.max(np.abs(offsets)) < 1.0
    assert 1.5 < np.median(sizes) < 6.0


def test_matched_non_lenses_are_lens_galaxies_without_their_source():
    """A plain non-lens draws lens systems exactly as a lens does and keeps the deflector galaxy:
    with both forced to kind "none", image i of either label holds the same galaxy, and the
    non-lens's noiseless image is the lens's minus its lensed source."""
    none_only = str([1] + [0] * 8)
    config = noiseless("lensfind_space", **{"instrument.num_pix": "48"}).override(
        {"lookalikes.non_lens_fractions": none_only, "lookalikes.lens_fractions": none_only}
    )
    renderer = LensFindRenderer(config)
    lenses = _draw_block(renderer, 3, 0, np.ones(4, dtype=int))
    plain = _draw_block(renderer, 3, 0, np.zeros(4, dtype=int))
    for lens, other in zip(lenses, plain, strict=True):
        for name, value in dataclasses.asdict(lens.params.galaxy).items():
            np.testing.assert_array_equal(getattr(other.params.galaxy, name), value)
        assert lens.params.lens_draws == other.params.lens_draws
        assert other.params.deflector is None and other.params.source is None
        assert lens.source.sum() > 0 and not other.source.any()
        np.testing.assert_array_equal(other.model, lens.model - lens.source)


# -- layout and reproducibility ----------------------------------------------------------------
def test_exact_lens_fractions_per_split():
    split, labels = lensfind_layout(1000, (0.06, 0.06, 0.01), (0.8, 0.1, 0.1), seed=0)
    assert np.bincount(split, minlength=3).tolist() == [800, 100, 100]
    lenses = [int(labels[split == code].sum()) for code in range(3)]
    assert lenses == [48, 6, 1]
    again = lensfind_layout(1000, (0.06, 0.06, 0.01), (0.8, 0.1, 0.1), seed=0)
    assert np.array_equal(labels, again[1]) and np.array_equal(split, again[0])
    other = lensfind_layout(1000, (0.06, 0.06, 0.01), (0.8, 0.1, 0.1), seed=1)
    assert not np.array_equal(labels, other[1])
    with pytest.raises(ValueError, match="lens fractions"):
        lensfind_layout(10, (0.5, 1.5, 0.0), (0.8, 0.1, 0.1), seed=0)


def test_block_bytes_do_not_depend_on_batching():
    renderer = LensFindRenderer(get_lensfind_preset("lensfind_ground"))
    labels = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
    block = render_block(renderer, 5, 0, len(labels), labels)
    whole, truth = block.images, block.truth
    cuts = [0, 1, 6, 7, len(labels)]
    pieces = [
        render_block(renderer, 5, a, b, labels[a:b])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    assert np.array_equal(whole, np.concatenate([p.images for p in pieces]))
    for name, column in truth.items():
        joined = np.concatenate([p.truth[name] for p in pieces])
        np.testing.assert_array_equal(column, joined, err_msg=name)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_file_bytes_whatever_batch_or_workers(tmp_path):
    config = get_lensfind_preset("lensfind_space").override({"instrument.num_pix": "25"})
    kwargs = {"lens_fraction": (0.5, 0.5, 0.5), "split": (0.6, 0.2, 0.2)}
    a = simulate(config, tmp_path / "a.h5", n=30, seed=3, batch_size=4, **kwargs).path
    b = simulate(config, tmp_path / "b.h5", n=30, seed=3, batch_size=64, workers=2, **kwargs).path
    c = simulate(config, tmp_path / "c.h5", n=30, seed=4, batch_size=4, **kwargs).path
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


# -- truth -------------------------------------------------------------------------------------
def test_dataset_truth_is_sane(tmp_path):
    config = get_lensfind_preset("lensfind_deeplense").override({"instrument.num_pix": "32"})
    path = simulate(config, tmp_path / "d.h5", n=40, lens_fraction=(0.5, 0.5, 0.5), seed=2).path
    ds = LensDataset(path)
    assert ds.class_names == ["non_lens", "lens"] and ds.image_shape == (3, 32, 32)
    truth = {name: ds.truth(name) for name in ds.truth_columns}
    lens = ds.labels == 1
    assert np.array_equal(truth["is_lens"] == 1, lens) and lens.sum() == 20
    assert np.all(truth["theta_e_arcsec"][lens] > 0)
    assert np.all(truth["mu_total"][lens] >= 3.0) and np.all(truth["arc_snr"][lens] >= 20)
    assert np.all(truth["resolved"][lens] == 1) and np.all(truth["lens_draws"][lens] >= 1)
    assert np.all(np.isfinite(truth["lensed_snr"][lens]) & (truth["lensed_snr"][lens] > 0))
    assert np.all(truth["z_source"][lens] > truth["z_lens"][lens])
    low, high = config.deflector.velocity_dispersion_range_kms
    sigma = truth["velocity_dispersion_kms"][lens]
    assert np.all((sigma >= low) & (sigma <= high))
    # no lensed source in non-lenses
    for name in ("theta_e_arcsec", "z_source", "source_magnitude", "mu_total", "mag_eff"):
        assert np.all(np.isnan(truth[name][~lens])), name
    for name in ("lensed_snr", "arc_snr", "n_pix_source", "n_source_im", "resolved"):
        assert np.all(truth[name][~lens] == 0), name
    assert np.all(np.isfinite(truth["lens_magnitude"])) and np.all(np.isfinite(truth["z_lens"]))
    ref = config.instrument.reference_index
    np.testing.assert_array_equal(
        truth["source_magnitude"], truth["source_magnitude_bands"][:, ref]
    )
    kinds = truth["lookalike_kind"]
    assert set(np.unique(kinds)) <= set(range(len(LOOKALIKE_KINDS)))
    non_lens_only = [KIND[k] for k in NON_LENS_ONLY_KINDS]
    assert not np.any(np.isin(kinds[lens], non_lens_only))
    assert ds.manifest["lookalike_kinds"] == {str(i): k for i, k in enumerate(LOOKALIKE_KINDS)}
    assert ds.manifest["band_names"] == ["g", "r", "i"]
    assert ds.manifest["lens_definition"] == "lenspop"
    seeing = truth["seeing_fwhm_arcsec"]
    for b, band in enumerate(config.instrument.bands):
        lo, hi = band.seeing_fwhm_range_arcsec
        assert np.all((seeing[:, b] >= lo) & (seeing[:, b] <= hi))


DARK_SKY_VIS = (
    "[{name: VIS, seeing_fwhm_range_arcsec: [0.18, 0.18], exposure_time_s: 566.0, "
    "num_exposures: 4, sky_brightness_mag_arcsec2: 27.0, magnitude_zero_point: 25.72, "
    "read_noise_e: 0.5, ccd_gain: 3.1}]"
)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("lensfind_ground", {}),  # sky-dominated noise
        ("lensfind_space", {"instrument.bands": DARK_SKY_VIS}),  # Poisson-dominated noise
    ],
    ids=["sky", "poisson"],
)
def test_lensed_snr_is_the_noise_models_matched_filter_snr(name, overrides):
    """Estimate each band's source amplitude from noisy images made by the simulator's own noise
    model: the scatter of the optimal estimate is 1 / S/N."""
    config = get_lensfind_preset(name).override({"instrument.num_pix": "48", **overrides})
    (p,) = find_params(config, 1, KIND["none"], seed=6)
    rendered = LensFindRenderer(config).render([p])
    model, source = rendered.models[0].astype(np.float64), rendered.source_models[0]
    background, exposure = noise_levels(config)
    expected = lensed_snr(source, model, background, exposure)
    variance = background[:, None, None] ** 2 + np.maximum(model, 0) / exposure[:, None, None]
    weights = source / variance
    keys = keys_tensor(counter_keys(0, np.arange(300), NOISE_STREAM), "cpu")
    models = torch.from_numpy(np.repeat(model[None], 300, axis=0))
    noisy = observe(models, keys, background, exposure).numpy().astype(np.float64)
    residual = noisy - (model - source)
    estimates = (weights * residual).sum(axis=(2, 3)) / (weights * source).sum((1, 2))
    measured = 1.0 / np.std(estimates, axis=0)
    np.testing.assert_allclose(measured, expected, rtol=0.15)


@pytest.mark.parametrize(
    "name, depths, aperture_arcsec",
    [
        # KiDS DR4 5σ limits in a 2″ aperture (Kuijken et al. 2019)
        ("lensfind_ground", {"u": 24.23, "g": 25.12, "r": 25.02, "i": 23.68}, 2.0),
        # HSC-Wide 5σ point-source depths (Aihara et al. 2018), 2″ aperture
        ("lensfind_deeplense", {"g": 26.5, "r": 26.1, "i": 25.9}, 2.0),
    ],
)
def test_survey_zero_points_reproduce_published_depths(name, depths, aperture_arcsec):
    """A point source at the published limit has S/N 5 in the aperture under lenstronomy's noise."""
    inst = get_lensfind_preset(name).instrument
    for band in inst.bands:
        single = SingleBand(
            pixel_scale=inst.pixel_scale_arcsec,
            exposure_time=band.exposure_time_s,
            magnitude_zero_point=band.magnitude_zero_point,
            read_noise=band.read_noise_e,
            ccd_gain=band.ccd_gain,
            sky_brightness=band.sky_brightness_mag_arcsec2,
            seeing=float(np.mean(band.seeing_fwhm_range_arcsec)),
            num_exposures=band.num_exposures,
        )
        n_pix = math.pi * (aperture_arcsec / 2) ** 2 / inst.pixel_scale_arcsec**2
        sigma = float(np.mean(band.seeing_fwhm_range_arcsec)) / 2.3548
        enclosed = 1 - math.exp(-((aperture_arcsec / 2) ** 2) / (2 * sigma**2))
        flux = single.magnitude2cps(depths[band.name]) * enclosed
        t = single.exposure_time
        noise = math.sqrt(n_pix * single.background_noise**2 + flux / t)
        assert flux / noise == pytest.approx(5.0, rel=0.05), band.name


# -- configs, presets and display ----------------------------------------------------------------
def test_presets_are_listed_and_round_trip(tmp_path):
    assert set(PRESET_NAMES) <= set(preset_names())
    assert {"model_i", "model_ii", "model_iii"} <= set(preset_names())
    for name in LENSFIND_PRESETS:
        config = get_any_preset(name)
        path = tmp_path / f"{name}.yaml"
        config.to_yaml(path)
        assert LensFindConfig.from_yaml(path) == config
    assert get_lensfind_preset("lensfind_ground").instrument.band_names == ("u", "g", "r", "i")
    assert get_lensfind_preset("lensfind_deeplense").instrument.num_pix == 64
    resized = resolve_config("lensfind_space", None, {"instrument.num_pix": "48"})
    assert resized.instrument.num_pix == 48
    with pytest.raises(KeyError, match="lensfind_space"):
        get_any_preset("lensfind_spce")


@pytest.mark.parametrize(
    "override, message",
    [
        ({"instrument.bands": "[{name: r}, {name: i}]"}, "colours.red_galaxy"),
        ({"instrument.reference_band": "z"}, "reference_band"),
        ({"lookalikes.lens_fractions": "[0.5, 0, 0, 0, 0.5, 0, 0, 0, 0]"}, "cannot be a spiral"),
        ({"lookalikes.non_lens_fractions": "[0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0]"}, "sum to 1"),
        ({"lookalikes.non_lens_fractions": "[1, 0, 0]"}, "needs 9 values"),
        ({"lens_definition.name": "lenspopp"}, "lens_definition.name"),
        (
            {
                "lens_definition.name": "any",
                "lookalikes.non_lens_fractions": "[0.5, 0, 0, 0, 0, 0, 0, 0, 0.5]",
            },
            "undetectable lenses",
        ),
        ({"deflector.colour_terms": "[[0, 0]]"}, "deflector.colour_terms"),
        ({"source.magnitude_range": "[28, 20]"}, "source.magnitude_range"),
        ({"instrument.supersampling": "0"}, "supersampling"),
    ],
)
def test_bad_settings_fail_when_built(override, message):
    with pytest.raises(ConfigError, match=message):
        get_lensfind_preset("lensfind_ground").override(override)


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_simulate_info_show_round_trip(tmp_path):
    out = tmp_path / "lf.h5"
    args = ["simulate", "--preset", "lensfind_ground", "--n", "20", "--lens-fraction"]
    args += ["0.5,0.5,0.5", "--split", "0.6,0.2,0.2", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args + ["--set", "instrument.num_pix=24"])
    assert result.exit_code == 0, result.output
    ds = LensDataset(out)
    assert len(ds) == 20 and ds.image_shape == (4, 24, 24)
    assert ds.counts()["train"] == {"non_lens": 6, "lens": 6}
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0, info.output
    assert "non_lens" in info.output and "lensfind_ground" in info.output
    png = tmp_path / "grid.png"
    shown = runner.invoke(app, ["show", str(out), "--out", str(png), "--per-class", "2"])
    assert shown.exit_code == 0, shown.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listing = runner.invoke(app, ["presets"])
    assert "lensfind_deeplense" in listing.output and "model_ii" in listing.output
    assert "reference_band: VIS" in runner.invoke(app, ["presets", "lensfind_space"]).output


@pytest.mark.parametrize(
    "extra",
    [
        ["--preset", "lensfind_ground", "--n-per-class", "5"],
        ["--preset", "model_ii", "--n", "5"],
        ["--preset", "model_ii", "--lens-fraction", "0.1,0.1,0.1"],
        ["--preset", "lensfind_space", "--deeplense-compat"],
        ["--preset", "lensfind_space", "--lens-fraction", "0.1,0.1"],
        ["--preset", "lensfind_space", "--lens-fraction", "0.1,1.5,0.1", "--n", "4"],
        ["--preset", "lensfind_space", "--set", "lookalikes.max_stars=0"],
    ],
)
def test_cli_bad_option_combinations_exit_2_with_a_message(tmp_path, extra):
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "x.h5"), "--quiet", *extra])
    assert result.exit_code == 2, result.output
    assert "error" in result.output.lower() and "Traceback" not in result.output
    assert not (tmp_path / "x.h5").exists()
