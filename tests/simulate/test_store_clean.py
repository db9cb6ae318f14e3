"""store_clean: the simulators store each image without its noise in /targets/clean."""

from __future__ import annotations

import numpy as np
import pytest

from darklens.data.h5 import LensDataset
from darklens.simulate.api import simulate


@pytest.mark.parametrize(
    ("preset", "size", "overrides"),
    [
        ("model_ii", {"n_per_class": 2}, {"instrument.num_pix": 16}),
        ("lensfind_ground", {"n": 4}, {}),
    ],
)
def test_clean_images_are_the_noisy_ones_without_noise(tmp_path, preset, size, overrides):
    plain = simulate(preset, tmp_path / "plain.h5", seed=3, overrides=overrides, **size).path
    stored = simulate(
        preset, tmp_path / "clean.h5", seed=3, overrides={**overrides, "store_clean": True}, **size
    ).path
    with LensDataset(plain) as a, LensDataset(stored) as b:
        assert a.target_names == [] and b.target_names == ["clean"]
        np.testing.assert_array_equal(a.images(), b.images())  # the noisy images are unchanged
        clean, noise = b.clean_images(), b.images() - b.clean_images()
    assert clean.shape == (len(clean), *b.image_shape)
    assert np.all(np.isfinite(clean)) and noise.std() > 0
    assert np.abs(noise).mean() < np.abs(clean).mean()  # noise around the model, not another image


def test_noiseless_instrument_stores_the_image_itself(tmp_path):
    path = simulate(
        "model_ii", tmp_path / "quiet.h5", seed=1, n_per_class=1,
        overrides={"instrument.num_pix": 16, "instrument.noise": "none", "store_clean": True},
    ).path  # fmt: skip
    with LensDataset(path) as data:
        np.testing.assert_array_equal(data.images(), data.clean_images())


def test_store_clean_needs_a_file(tmp_path):
    with pytest.raises(ValueError, match="store_clean writes /targets/clean into a dataset file"):
        simulate("model_ii", n_per_class=1, overrides={"store_clean": True})


def test_per_image_view_configs_refuse_store_clean():
    from darklens.config import ConfigError
    from darklens.simulate.api import resolve_config

    with pytest.raises(ConfigError, match="store_clean is available for the block-rendered"):
        resolve_config("model_iv", overrides={"store_clean": True})
