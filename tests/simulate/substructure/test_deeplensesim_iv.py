"""model_iv --deeplense-compat against DeepLenseSim's Model IV code path (its lenstronomy calls
as its scripts make them, :mod:`darklens.simulate.substructure.deeplensesim_iv`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from darklens.data.deeplense import import_deeplense
from darklens.data.h5 import LensDataset
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.substructure import deeplensesim_iv as dls_iv
from darklens.simulate.substructure.kind import KIND
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import ImageParams, draw_image_params
from tests.helpers import mean_ring_radius_px, profiles_agree, quantiles_agree

CLASSES = ("no_sub", "cdm", "axion")
PIXEL_TOLERANCE = 1e-4  # of the image's peak
N_STATS = 150  # images per class for the statistics


def reference_params(p: ImageParams) -> dls_iv.ModelIVParams:
    view = p.view
    return dls_iv.ModelIVParams(
        p.label, view.sigma_v_kms, p.source_x, p.source_y, view.bank_angle_rad, view.bank_index,
        p.point_x, p.point_y, p.point_mass, p.axion_mass_ev,
    )  # fmt: skip


@pytest.mark.parametrize("label", range(3), ids=CLASSES)
def test_compat_pixels_equal_model_iv_scripts(label):
    config = resolve_config("model_iv", deeplense_compat=True)
    renderer = SubstructureRenderer(config)
    galaxies = dls_iv.default_galaxies()
    for index in range(3):
        p = draw_image_params(config, label, 5, 3 * index + label)
        reference = dls_iv.model_image(reference_params(p), galaxies[p.view.bank_index])
        ours = renderer.render([p])[0].astype(np.float64)
        assert np.max(np.abs(ours - reference)) <= PIXEL_TOLERANCE * reference.max()
    theta_e = p.view.einstein_radius_arcsec
    assert theta_e == pytest.approx(1.5) if label else 1.0 < theta_e < 1.7


def test_compat_images_are_noisy_clipped_and_divided_by_their_maximum():
    config = resolve_config("model_iv", deeplense_compat=True)
    block = KIND.render_block(KIND.renderer(config, "cpu"), 3, 0, 6, np.arange(6) % 3)
    images = block.images[:, 0]
    assert np.all(images >= 0) and np.allclose(images.max(axis=(1, 2)), 1.0)
    corners = images[:, :8, :8]
    assert np.mean(corners == 0) > 0.3 and np.mean(corners > 0) > 0.3  # noise, clipped at 0
    assert np.all(block.truth["noisy"] == 1)
    sigma_v = block.truth["sigma_v_kms"]
    assert np.all(np.isfinite(sigma_v[::3])) and np.all(np.isnan(np.delete(sigma_v, [0, 3])))


def test_compat_statistics_match_model_iv_scripts_for_independent_draws(tmp_path):
    """Ring radius of the mean image and the total-flux distribution of the stored (max-divided)
    images, per class: darklens-compat vs the scripts' calls with their own draws."""
    config = resolve_config("model_iv", deeplense_compat=True)
    path = simulate(config, tmp_path / "ours.h5", n_per_class=N_STATS, seed=11).path
    with LensDataset(path) as ds:
        ours_all, labels = ds.images()[:, 0].astype(np.float64), ds.labels
    galaxies = dls_iv.default_galaxies()
    rng = np.random.default_rng(12)
    for label, name in enumerate(CLASSES):
        theirs = []
        for _ in range(N_STATS):
            params = dls_iv.draw_params(label, rng, len(galaxies))
            theirs.append(dls_iv.stored_image(params, galaxies[params.galaxy], rng))
        theirs, ours = np.stack(theirs), ours_all[labels == label]
        # beyond the lens light; the mean ring is broad, so its light-weighted radius
        ring_ours = mean_ring_radius_px(ours, 4.0, 24.0)
        ring_theirs = mean_ring_radius_px(theirs, 4.0, 24.0)
        assert abs(ring_ours - ring_theirs) <= 0.5, (name, ring_ours, ring_theirs)
        assert 10 <= ring_theirs <= 15, name  # θ_E 1.3-1.5″ (13-15 px), not rescaled
        agree, z = profiles_agree(ours, theirs)
        assert agree, (name, z)
        flux_ours, flux_theirs = ours.sum(axis=(1, 2)), theirs.sum(axis=(1, 2))
        agree, z = quantiles_agree(flux_ours, flux_theirs)
        assert agree, (name, z)
        assert stats.ks_2samp(flux_ours, flux_theirs).pvalue > 1e-3, name


def test_model_iv_reference_folder_imports(tmp_path):
    folder = dls_iv.write_model_iv_folder(tmp_path, n_per_class=2, seed=1)
    out = tmp_path / "imported.h5"
    import_deeplense(folder, out)
    with LensDataset(out) as ds:
        assert len(ds) == 6 and ds.image_shape == (1, 64, 64)
        images = ds.images()
        assert images.min() >= 0 and np.allclose(images.max(axis=(1, 2, 3)), 1.0)
