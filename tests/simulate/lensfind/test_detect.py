"""Detectability measures and lens definitions: hand-made images, brute force, and datasets in
which nothing below the definition is labelled a lens."""

import itertools
import math

import numpy as np
import pytest

from darklens.data.h5 import LensDataset
from darklens.simulate.api import simulate
from darklens.simulate.func.rng import PARAMS_STREAM, image_rng
from darklens.simulate.lensfind import LOOKALIKE_KINDS, LensFindRenderer, get_lensfind_preset
from darklens.simulate.lensfind.detect import (
    Detectability,
    measure,
    meets_definition,
    optimal_aperture_snr,
    pixel_noise,
    snr_upper_bound,
)
from darklens.simulate.lensfind.kind import _detectability, _may_pass, render_block
from darklens.simulate.lensfind.noise import lensed_snr, noise_levels
from darklens.simulate.lensfind.sampling import draw_header, draw_system

KIND = {name: code for code, name in enumerate(LOOKALIKE_KINDS)}


def test_optimal_aperture_snr_is_lenspops_ranked_aperture():
    """With uniform noise, ranking pixels by s/σ and growing the aperture finds the best of all
    2^n pixel subsets; with any noise it lies between the best single pixel and the
    matched-filter S/N sqrt(Σ s²/σ²) (Cauchy–Schwarz)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        signal = rng.exponential(1.0, size=7) * (rng.random(7) > 0.2)
        uniform = np.full(7, 1.3)
        best = max(
            signal[list(c)].sum() / math.sqrt((uniform[list(c)] ** 2).sum())
            for k in range(1, 8)
            for c in itertools.combinations(range(7), k)
        )
        assert optimal_aperture_snr(signal, uniform) == pytest.approx(best)
        sigma = rng.uniform(0.5, 3.0, size=7)
        snr = optimal_aperture_snr(signal, sigma)
        assert np.max(signal / sigma) <= snr <= math.sqrt(np.sum((signal / sigma) ** 2)) + 1e-12
    assert optimal_aperture_snr(np.zeros(4), np.ones(4)) == 0.0


def _two_blobs() -> tuple[np.ndarray, np.ndarray]:
    """A 1-band 12×12 source of two 2×2 blobs (signal 10) on a lens light of 4, except one blob
    sitting on lens light 50: only the other blob beats the lens light."""
    source = np.zeros((1, 12, 12))
    source[0, 2:4, 2:4] = 10.0
    source[0, 8:10, 7:9] = 10.0
    lens = np.full((1, 12, 12), 4.0)
    lens[0, 8:10, 7:9] = 50.0
    return source, lens + source


def test_measures_on_a_hand_made_image():
    source, model = _two_blobs()
    background, exposure = np.array([1.0]), np.array([1e9])  # background-limited: σ = 1
    det = measure(
        source,
        model,
        background,
        exposure,
        np.array([20.0]),
        magnification=4.0,
        source_radius_arcsec=0.2,
        theta_e_arcsec=1.0,
        seeing_fwhm_arcsec=np.array([0.7]),
    )
    assert det.n_pix_source == 4 and det.n_source_im == 1  # the blob on the bright lens fails
    assert det.mag_eff == pytest.approx(40.0 / 20.0)
    assert det.arc_snr == pytest.approx(80.0 / math.sqrt(8.0))  # all 8 pixels, σ = 1
    assert det.resolved  # 4 × 0.2 > 0.7
    assert det.seeing_test  # 1 > 0.04 + 0.1225
    lower_lens = model.copy()
    lower_lens[0, 8:10, 7:9] = 14.0
    again = measure(
        source, lower_lens, background, exposure, np.array([20.0]), magnification=4.0,
        source_radius_arcsec=0.2, theta_e_arcsec=0.3, seeing_fwhm_arcsec=np.array([0.9]),
    )  # fmt: skip
    assert again.n_pix_source == 8 and again.n_source_im == 2
    assert not again.resolved and not again.seeing_test  # 0.8 < 0.9; 0.09 < 0.04 + 0.2025


def test_lens_light_residual_adds_confusion_noise():
    source, model = _two_blobs()
    background, exposure = np.array([1.0]), np.array([1e9])
    plain = pixel_noise(model, source, background, exposure)
    confused = pixel_noise(model, source, background, exposure, lens_light_residual=0.1)
    np.testing.assert_allclose(plain, 1.0)
    np.testing.assert_allclose(confused[0, 0, 0], math.sqrt(1 + 0.4**2))
    np.testing.assert_allclose(confused[0, 8, 7], math.sqrt(1 + 5.0**2))


def _det(**changes) -> Detectability:
    values = dict(
        arc_snr_bands=np.array([25.0]),
        best_band=0,
        n_pix_source=30,
        n_source_im=2,
        mag_eff=2.0,
        resolved=True,
        seeing_test=True,
        magnification=4.0,
    )
    return Detectability(**(values | changes))


@pytest.mark.parametrize(
    "changes, lenspop, challenge2",
    [
        ({}, True, True),
        ({"magnification": 2.9}, False, True),
        ({"arc_snr_bands": np.array([19.9])}, False, True),
        ({"resolved": False}, False, True),
        ({"seeing_test": False}, False, True),
        ({"n_source_im": 0, "n_pix_source": 0}, True, False),
        ({"mag_eff": 1.6}, True, False),
        ({"n_pix_source": 20}, True, False),
    ],
)
def test_definitions_apply_their_published_thresholds(changes, lenspop, challenge2):
    det = _det(**changes)
    assert meets_definition("lenspop", det) is lenspop
    assert meets_definition("challenge2", det) is challenge2
    assert meets_definition("any", det)
    with pytest.raises(ValueError, match="unknown lens definition"):
        meets_definition("strict", det)


@pytest.mark.parametrize("name", ["lensfind_space", "lensfind_ground"])
def test_snr_bound_never_undercuts_the_rendered_snr(name):
    """The pre-render bound is a true upper bound of both S/N measures of the rendered arcs, and
    the pre-render check never rejects a system that the render would accept."""
    config = get_lensfind_preset(name).override({"instrument.num_pix": "64"})
    renderer = LensFindRenderer(config)
    background, exposure = noise_levels(config)
    params = []
    for i in range(30):
        rng = image_rng(7, i, PARAMS_STREAM)
        params.append(draw_system(config, draw_header(config, 1, rng), rng))
    mu = renderer.magnification(params)
    rendered = renderer.render(params, with_magnification=False)
    kernels = renderer.kernel_l2_squared(params)
    for k, p in enumerate(params):
        flux = renderer.flux_e_per_s(p.source_magnitudes())
        peak = np.full_like(flux, np.inf)  # the PSF term alone must bound it too
        bound = snr_upper_bound(mu[k] * flux, peak, renderer.pixel_area, kernels[k], background)
        source, model = rendered.source_models[k], rendered.models[k]
        det = _detectability(renderer, p, model, source, float(mu[k]))
        assert np.all(det.arc_snr_bands <= bound * 1.02)
        assert np.all(lensed_snr(source, model, background, exposure) <= bound * 1.02)
        if meets_definition("lenspop", det):
            assert _may_pass(renderer, p, float(mu[k]))


def test_no_lens_below_the_definition_and_undetectable_lenses_kept_apart(tmp_path):
    """challenge2 labels: every lens passes it; the undetectable_lens look-alikes (labelled
    non-lens) are lens systems that fail it, and keep their lensing truth."""
    fractions = [0.5, 0, 0, 0, 0, 0, 0, 0, 0.5]
    config = get_lensfind_preset("lensfind_space").override(
        {
            "instrument.num_pix": "48",
            "lens_definition.name": "challenge2",
            "lookalikes.non_lens_fractions": str(fractions),
        }
    )
    path = simulate(config, tmp_path / "c2.h5", n=24, lens_fraction=(0.5, 0.5, 0.5), seed=4).path
    ds = LensDataset(path)
    truth = {name: ds.truth(name) for name in ds.truth_columns}
    lens = ds.labels == 1
    assert 0 < lens.sum() < len(lens)
    assert np.all(truth["n_source_im"][lens] > 0)
    assert np.all(truth["mag_eff"][lens] > 1.6) and np.all(truth["n_pix_source"][lens] > 20)
    hidden = truth["lookalike_kind"] == KIND["undetectable_lens"]
    assert hidden.any() and not np.any(hidden & lens)
    failing = (
        (truth["n_source_im"] == 0) | (truth["mag_eff"] <= 1.6) | (truth["n_pix_source"] <= 20)
    )
    assert np.all(failing[hidden])
    assert np.all(np.isfinite(truth["theta_e_arcsec"][hidden]))
    assert ds.manifest["lens_definition"] == "challenge2"


def test_an_unreachable_definition_fails_clearly():
    config = get_lensfind_preset("lensfind_ground").override(
        {
            "instrument.num_pix": "32",
            "source.magnitude_range": "[26.9, 27.0]",
            "lens_definition.max_draws": "5",
        }
    )
    with pytest.raises(RuntimeError, match="lens_definition.max_draws"):
        render_block(LensFindRenderer(config), 0, 0, 1, np.ones(1, dtype=int))
