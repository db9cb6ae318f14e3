"""Dataset simulation: reproducibility, presets, noise models, splits and the dataset file."""

import hashlib

import numpy as np
import pytest
import torch

from darklens.data.h5 import LensDataset
from darklens.simulate.api import simulate
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    counter_keys,
    keys_tensor,
    layout_rng,
    stratified_split_codes,
)
from darklens.simulate.substructure.kind import KIND
from darklens.simulate.substructure.noise import apply_noise
from darklens.simulate.substructure.presets import PRESETS, get_preset
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import draw_image_params


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_block(renderer, seed, start, stop):
    """(images, labels, truth) of images start..stop-1 (label i = i mod 3)."""
    labels = np.arange(start, stop) % len(renderer.config.class_names)
    block = KIND.render_block(renderer, seed, start, stop, labels)
    return block.images, labels, block.truth


def split_assignment(n_per_class, n_classes, fractions, seed):
    labels = np.arange(n_per_class * n_classes) % n_classes
    return stratified_split_codes(labels, fractions, layout_rng(seed, 0))


def noise_keys(seed: int, indices: list[int]) -> torch.Tensor:
    return keys_tensor(counter_keys(seed, np.asarray(indices), NOISE_STREAM), "cpu")


def test_image_bytes_do_not_depend_on_batching():
    renderer = SubstructureRenderer(get_preset("model_ii"))
    whole, labels, _ = render_block(renderer, 5, 0, 12)
    pieces = [render_block(renderer, 5, a, b)[0] for a, b in [(0, 1), (1, 6), (6, 7), (7, 12)]]
    assert np.array_equal(whole, np.concatenate(pieces))
    assert list(labels) == [i % 3 for i in range(12)]
    other_seed, _, _ = render_block(renderer, 6, 0, 12)
    assert not np.array_equal(whole, other_seed)


def test_same_seed_same_file_bytes_whatever_batch_or_workers(tmp_path):
    config = get_preset("model_ii")
    a = simulate(config, tmp_path / "a.h5", n_per_class=20, seed=3, batch_size=7).path
    b = simulate(config, tmp_path / "b.h5", n_per_class=20, seed=3, batch_size=64, workers=2).path
    c = simulate(config, tmp_path / "c.h5", n_per_class=20, seed=4, batch_size=7).path
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


def test_dataset_file_contents(tmp_path):
    config = get_preset("model_ii")
    result = simulate(config, tmp_path / "d.h5", n_per_class=10, split=(0.6, 0.2, 0.2), seed=1)
    ds = LensDataset(result.path)
    assert len(ds) == 30 and ds.image_shape == (1, 64, 64)
    assert ds.class_names == ["no_sub", "cdm", "axion"]
    counts = ds.counts()
    assert counts["train"] == {"no_sub": 6, "cdm": 6, "axion": 6}
    assert counts["val"] == counts["test"] == {"no_sub": 2, "cdm": 2, "axion": 2}
    assert ds.manifest["preset"] == "model_ii" and ds.manifest["seed"] == 1
    assert ds.manifest["config"] == config.to_dict()
    axion_mass = ds.truth("axion_mass_ev")
    assert np.all(np.isfinite(axion_mass[ds.labels == 2]))
    assert np.all(np.isnan(axion_mass[ds.labels != 2]))
    n_sub = ds.truth("n_subhalos")
    assert np.all(n_sub[ds.labels == 1] == 25) and np.all(n_sub[ds.labels != 1] == 0)
    masses = ds.truth("subhalo_mass_msun")
    assert np.all(np.isfinite(masses[ds.labels == 1]))
    # a lazily read block equals the same images read one by one
    idx = np.array([7, 2, 19])
    np.testing.assert_array_equal(ds.images(idx), np.stack([ds[i][0] for i in idx]))


def test_split_assignment_is_stratified_and_seeded():
    codes = split_assignment(100, 3, (0.8, 0.1, 0.1), seed=0)
    for label in range(3):
        per_class = codes[label::3]
        assert np.bincount(per_class, minlength=3).tolist() == [80, 10, 10]
    assert np.array_equal(codes, split_assignment(100, 3, (0.8, 0.1, 0.1), seed=0))
    assert not np.array_equal(codes, split_assignment(100, 3, (0.8, 0.1, 0.1), seed=1))
    with pytest.raises(ValueError, match="sum"):
        split_assignment(10, 3, (0.8, 0.3, 0.1), seed=0)


@pytest.mark.parametrize("name", ["model_i", "model_ii", "model_iii"])
def test_each_preset_shapes_and_ranges(name):
    config = get_preset(name)
    renderer = SubstructureRenderer(config)
    images, _, truth = render_block(renderer, 0, 0, 6)
    n = config.instrument.num_pix
    assert images.shape == (6, 1, n, n) and images.dtype == np.float32
    assert np.all(np.isfinite(images))
    if name == "model_i":
        assert np.all(images >= 0) and np.all(images == np.round(images))  # integer counts
        assert np.all((10**3 <= truth["exposure_s"]) & (truth["exposure_s"] <= 10**3.5))
        # counts scale with exposure: the ring is thousands of counts bright
        assert images.max() > 100
    else:
        assert np.all(truth["exposure_s"] == config.instrument.total_exposure_s)


def test_ccd_noise_has_lenstronomys_background_level():
    config = get_preset("model_ii")
    sigma = config.instrument.background_sigma
    from lenstronomy.SimulationAPI.ObservationConfig.Euclid import Euclid
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    band = Euclid(band="VIS", psf_type="GAUSSIAN", coadd_years=6).kwargs_single_band()
    reference = SimAPI(64, band, {}).background_noise
    assert sigma == pytest.approx(reference, rel=1e-12)
    empty = torch.zeros((2, 200, 200))
    exposure = torch.full((2,), config.instrument.total_exposure_s)
    noisy = apply_noise(empty, config, noise_keys(0, [0, 1]), exposure).numpy()
    assert noisy.std() == pytest.approx(sigma, rel=0.02)
    assert not np.array_equal(noisy[0], noisy[1])  # each image has its own stream


def test_deeplense_compat_model_ii_is_twice_the_noiseless_model():
    config = get_preset("model_ii").override({"deeplense_compat": True})
    renderer = SubstructureRenderer(config)
    images, _, _ = render_block(renderer, 0, 0, 3)
    params = [draw_image_params(config, i % 3, 0, i) for i in range(3)]
    models = renderer.render(params)
    np.testing.assert_array_equal(
        images[:, 0], (2.0 * models.astype(np.float64)).astype(np.float32)
    )
    # the physical default adds noise instead
    physical, _, _ = render_block(SubstructureRenderer(get_preset("model_ii")), 0, 0, 3)
    assert not np.allclose(physical[:, 0], 2 * models)


def test_counts_noise_is_poisson_in_the_bright_limit():
    config = get_preset("model_i")
    image = torch.full((1, 300, 300), 0.5)
    exposure = 2000.0
    counts = apply_noise(image, config, noise_keys(0, [0]), torch.tensor([exposure])).numpy()
    assert np.all(counts == np.round(counts)) and counts.min() >= 0
    expected_mean = 0.5 * exposure
    # Poisson of (t·(m + shot + bkg)): variance = t·m + t·m + (t·rms)²
    expected_var = 2 * expected_mean + (exposure * config.instrument.background_rms) ** 2
    assert counts.mean() == pytest.approx(expected_mean, rel=0.01)
    assert counts.var() == pytest.approx(expected_var, rel=0.05)


def test_presets_are_registered_frozen_configs():
    assert PRESETS.names() == ["model_i", "model_ii", "model_iii", "model_iv", "robust"]
    config = get_preset("model_iii")
    with pytest.raises(AttributeError):
        config.preset = "x"  # frozen
    assert config.instrument.pixel_scale_arcsec == 0.08
    assert get_preset("model_i").instrument.num_pix == 150
    with pytest.raises(KeyError, match="model_ii"):
        get_preset("model_2")
