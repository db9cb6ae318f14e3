"""Per-image settings: domain-randomised draws, Model IV's compat lenses, configs and bad banks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.deeplense import BadInputFile
from darklens.data.transforms import resize
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.func.cosmology import deflection_rescaling
from darklens.simulate.func.rng import NOISE_STREAM, image_rng
from darklens.simulate.substructure.kind import KIND
from darklens.simulate.substructure.noise import observed_view_image
from darklens.simulate.substructure.presets import get_anchor
from darklens.simulate.substructure.sampling import draw_image_params
from darklens.simulate.substructure.views import draw_view, sis_einstein_radius_arcsec


def _views(config, n, label=1, seed=0):
    return [draw_image_params(config, label, seed, i).view
            for i in range(n)]  # fmt: skip


def test_robust_draws_cover_the_ranges_and_both_conventions():
    config = resolve_config("robust")
    rand = config.randomize
    views = _views(config.override({"randomize.anchor_probability": 0.5}), 800)
    anchors = np.array([v.anchor for v in views])
    assert 0.4 < np.mean(anchors >= 0) < 0.6 and set(anchors) == {-1, 0, 1, 2, 3}
    views = [v for v in views if v.anchor < 0]
    theta = np.array([v.einstein_radius_arcsec for v in views])
    assert rand.einstein_radius_arcsec_range[0] <= theta.min() < 0.7
    assert 1.9 < theta.max() <= rand.einstein_radius_arcsec_range[1]
    pixel = np.array([v.pixel_scale_arcsec for v in views])
    assert np.all((pixel >= 0.07) & (pixel <= 0.125))
    beta = deflection_rescaling(0.5, 1.0, 2.5, 67.5, 0.309)
    # subhalo θ_E per √M☉ relative to the main lens: 1/√M (physical) or 1/√(βM) (convention)
    ratio = np.array([v.point_rein_per_sqrt_msun / v.einstein_radius_arcsec for v in views])
    physical = np.isclose(ratio, 1 / math.sqrt(1e12))
    convention = np.isclose(ratio, 1 / math.sqrt(beta * 1e12))
    assert np.all(physical | convention) and 0.4 < convention.mean() < 0.6
    assert 0.4 < np.mean([v.noise == "ccd" for v in views]) < 0.6
    assert 0.4 < np.mean([v.source is None for v in views]) < 0.6
    assert 0.15 < np.mean([len(v.lens_light) == 1 for v in views]) < 0.35
    scales = np.log10([v.flux_scale for v in views])
    assert scales.min() < -1.5 and scales.max() > 1.5
    sigma = [v.background_sigma for v in views if v.noise == "ccd"]
    assert max(sigma) / min(sigma) > 5  # exposure and pixel scale change the noise level


def test_robust_anchors_take_their_simulators_settings():
    config = resolve_config("robust")
    views = [v for v in _views(config, 200) if v.anchor >= 0]
    names = config.randomize.anchors
    for view in views:
        expected = draw_view(get_anchor(names[view.anchor]), 1, np.random.default_rng(0), 1.0)
        assert view.pixel_scale_arcsec == expected.pixel_scale_arcsec
        assert view.einstein_radius_arcsec == expected.einstein_radius_arcsec
        assert view.noise == expected.noise and view.normalize_max == expected.normalize_max
    assert get_anchor("model_i_compat").instrument.num_pix == 150


def test_model_i_anchors_render_on_their_grid_and_are_resized_with_their_noise():
    config = resolve_config("robust")
    index = next(
        i for i in range(200)
        if draw_image_params(config, i % 3, 4, i).view.anchor == 0
    )  # fmt: skip
    renderer = KIND.renderer(config, "cpu")
    block = KIND.render_block(renderer, 4, index, index + 1, np.array([index % 3]))
    assert block.images.shape == (1, 1, 64, 64) and block.truth["anchor_index"][0] == 0
    p = draw_image_params(config, index % 3, 4, index)
    native = renderer.render([p])[0]
    assert native.shape == (150, 150)
    # counts on the native grid with the image's own noise stream, then resized
    counts = observed_view_image(native, p.view, image_rng(4, index, NOISE_STREAM), 150)
    assert counts.shape == (150, 150)
    expected = observed_view_image(native, p.view, image_rng(4, index, NOISE_STREAM), 64)
    np.testing.assert_array_equal(block.images[0, 0], expected)
    resized = resize(torch.from_numpy(counts)[None, None], 64)[0, 0].numpy()
    np.testing.assert_allclose(expected, resized, rtol=1e-6)
    again = KIND.render_block(renderer, 4, index, index + 1, np.array([index % 3])).images
    np.testing.assert_array_equal(again, block.images)
    with pytest.raises(ConfigError, match="needs randomize.anchors"):
        resolve_config("robust", overrides={"randomize.anchors": "[]"})


def test_model_iv_compat_lenses_follow_its_scripts():
    config = resolve_config("model_iv", deeplense_compat=True)
    no_sub, cdm = _views(config, 300, label=0), _views(config, 20, label=1)
    sigma = np.array([v.sigma_v_kms for v in no_sub])
    assert abs(sigma.mean() - 260) < 4 and abs(sigma.std() - 20) < 3
    for v in no_sub[:5]:
        assert v.einstein_radius_arcsec == pytest.approx(
            sis_einstein_radius_arcsec(v.sigma_v_kms, 0.5, 2.5, 70.0, 0.3)
        )
        assert v.gamma1 == v.gamma2 == v.lens_e1 == 0
    assert all(v.einstein_radius_arcsec == 1.5 and v.gamma1 == 0.05 for v in cdm)
    assert all(not v.bank_flip and v.bank_box_arcsec == 0.64 for v in cdm)
    assert all(v.normalize_max and v.noise == "ccd" for v in cdm)
    physical = _views(resolve_config("model_iv"), 20)
    assert all(v.einstein_radius_arcsec == pytest.approx(1.66, abs=0.01) for v in physical)
    assert not any(v.normalize_max for v in physical)


def test_per_image_view_configs_are_validated():
    with pytest.raises(ConfigError, match="cannot be combined with deeplense_compat"):
        resolve_config("robust", deeplense_compat=True)
    with pytest.raises(ConfigError, match="one entry per component"):
        resolve_config("model_iv", overrides={"lens_light.n_sersic": "[2.0]"})
    with pytest.raises(ConfigError, match="source.kind"):
        resolve_config("model_ii", overrides={"source.kind": "galaxy"})
    with pytest.raises(ConfigError, match="bank_probability"):
        resolve_config("robust", overrides={"randomize.bank_probability": "1.5"})
    assert not resolve_config("model_ii").per_image_views
    assert resolve_config("model_ii", overrides={"source.kind": "image_bank"}).per_image_views


def test_a_bad_bank_fails_before_anything_is_written(tmp_path):
    bank = tmp_path / "bank"
    bank.mkdir()
    np.save(bank / "ok.npy", np.ones((16, 16)))
    np.save(bank / "broken.npy", np.full((16, 16), np.nan))
    config = resolve_config("model_iv", overrides={"source.bank": str(bank)})
    out = tmp_path / "d.h5"
    with pytest.raises(BadInputFile, match="broken.npy"):
        simulate(config, out, n_per_class=2)
    assert not out.exists()
    result = CliRunner().invoke(
        app, ["simulate", "--preset", "model_iv", "--n-per-class", "2", "-o", str(out),
              "--set", f"source.bank={bank}"],
    )  # fmt: skip
    assert result.exit_code == 2 and "broken.npy" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_user_bank_makes_the_dataset_and_its_manifest_names_it(tmp_path):
    bank = tmp_path / "bank"
    bank.mkdir()
    yy, xx = np.mgrid[:32, :32] - 15.5
    for k in range(3):
        np.save(bank / f"g{k}.npy", np.exp(-0.5 * ((xx / (3 + k)) ** 2 + (yy / 4) ** 2)))
    config = resolve_config("model_iv", overrides={"source.bank": str(bank)})
    result = simulate(config, tmp_path / "d.h5", n_per_class=3, seed=2)
    from darklens.data.h5 import LensDataset

    with LensDataset(result.path) as ds:
        assert ds.manifest["source_bank"]["n_images"] == 3
        assert len(ds.manifest["source_bank"]["sha256"]) == 64
        assert set(ds.truth("source_bank_index")) <= {0, 1, 2}
        assert np.all(np.isfinite(ds.images()))
