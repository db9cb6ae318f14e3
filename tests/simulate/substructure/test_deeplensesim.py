"""--deeplense-compat against DeepLenseSim's own code path (its lenstronomy calls as its scripts
make them, :mod:`darklens.simulate.substructure.deeplensesim`): the same pixels for the same
parameters, and the same image statistics for independent draws of 500 images per class."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from darklens.data.h5 import LensDataset
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.substructure import deeplensesim as dls
from darklens.simulate.substructure.kind import KIND
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import ImageParams, draw_image_params
from tests.helpers import radial_profiles, ring_radius_px

CLASSES = ("no_sub", "cdm", "axion")
PIXEL_TOLERANCE = 1e-4  # of the image's peak
N_STATS = 500  # images per class for the statistics


def reference_params(p: ImageParams) -> dls.DeepLenseSimParams:
    return dls.DeepLenseSimParams(
        p.label, p.source_x, p.source_y, p.exposure_s, p.point_x, p.point_y, p.point_mass,
        p.axion_mass_ev,
    )  # fmt: skip


@pytest.mark.parametrize("label", range(3), ids=CLASSES)
@pytest.mark.parametrize("model", dls.MODELS)
def test_compat_pixels_equal_deeplensesims(model, label):
    config = resolve_config(model, deeplense_compat=True)
    renderer = SubstructureRenderer(config)
    for index in range(2):
        p = draw_image_params(config, label, 5, 3 * index + label)
        reference = dls.model_image(model, reference_params(p))
        ours = renderer.render([p])[0].astype(np.float64)
        peak = reference.max()
        assert np.max(np.abs(ours - reference)) <= PIXEL_TOLERANCE * peak
    if model != "model_i":  # the stored image: model + model, noise discarded
        block = KIND.render_block(renderer, 5, label, label + 1, np.array([label]))
        p = draw_image_params(config, label, 5, label)
        stored = dls.stored_image(model, reference_params(p))
        assert np.max(np.abs(block.images[0, 0] - stored)) <= PIXEL_TOLERANCE * stored.max()


@pytest.mark.parametrize("model", dls.MODELS)
def test_compat_statistics_match_deeplensesims_for_independent_draws(model, tmp_path):
    """Ring radius of the mean image and the distribution of total flux, per class, for 500
    darklens-compat images vs 500 made by DeepLenseSim's calls with their own draws."""
    config = resolve_config(model, deeplense_compat=True)
    path = simulate(config, tmp_path / "ours.h5", n_per_class=N_STATS, seed=11, workers=1).path
    with LensDataset(path) as ds:
        ours_all, labels = ds.images()[:, 0].astype(np.float64), ds.labels
    rng = np.random.default_rng(12)
    for label, name in enumerate(CLASSES):
        theirs = np.stack(
            [
                dls.stored_image(model, dls.draw_params(model, label, rng), rng)
                for _ in range(N_STATS)
            ]
        )
        ours = ours_all[labels == label]
        ring_ours, ring_theirs = ring_radius_px(ours), ring_radius_px(theirs)
        assert abs(ring_ours - ring_theirs) <= 0.5, (name, ring_ours, ring_theirs)
        # the mean radial profiles agree within their sampling errors (5σ, any radius)
        a, b = radial_profiles(ours), radial_profiles(theirs)
        error = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b)) + 1e-12
        z = np.abs(a.mean(axis=0) - b.mean(axis=0)) / error
        assert z.max() < 5, (name, int(np.argmax(z)), z.max())
        flux_ours, flux_theirs = ours.sum(axis=(1, 2)), theirs.sum(axis=(1, 2))
        quantiles = [0.1, 0.5, 0.9]
        # 8 %: three standard errors of the difference of two 500-image quantiles for Model I,
        # whose total counts spread with the exposure (log-uniform over a factor 3.2).
        np.testing.assert_allclose(
            np.quantile(flux_ours, quantiles), np.quantile(flux_theirs, quantiles), rtol=0.08
        )
        assert stats.ks_2samp(flux_ours, flux_theirs).pvalue > 1e-3, name


def test_the_physical_preset_is_not_deeplensesims():
    """What the reference tests catch: the physical Model II's ring sits twice as far out."""
    rng = np.random.default_rng(0)
    theirs = np.stack(
        [dls.stored_image("model_ii", dls.draw_params("model_ii", 0, rng)) for _ in range(40)]
    )
    physical = SubstructureRenderer(resolve_config("model_ii"))
    config = physical.config
    ours = physical.render(
        [draw_image_params(config, 0, 0, i) for i in range(40)]
    )
    assert ring_radius_px(ours) > ring_radius_px(theirs) + 5  # 16 px vs 8 px
    compat = SubstructureRenderer(resolve_config("model_ii", deeplense_compat=True))
    assert compat.effective_einstein_radius_arcsec == pytest.approx(0.8118, abs=2e-4)
    assert compat.deflection_scale == pytest.approx(0.63346, abs=1e-5)


def test_deeplensesim_folder_imports_with_labels_and_axion_masses(tmp_path):
    folder = dls.write_deeplense_folder(tmp_path, "model_ii", n_per_class=2, seed=1)
    assert sorted(p.name for p in folder.iterdir()) == ["axion", "cdm", "no_sub"]
    from darklens.data.deeplense import import_deeplense

    out = tmp_path / "imported.h5"
    import_deeplense(folder, out)
    with LensDataset(out) as ds:
        assert len(ds) == 6 and ds.image_shape == (1, 64, 64)
        masses = ds.truth("axion_mass_ev")
        axion = np.array(ds.class_names)[ds.labels] == "axion"
        assert np.all((1e-24 <= masses[axion]) & (masses[axion] <= 1e-22))
        assert np.all(ds.images() >= 0)
