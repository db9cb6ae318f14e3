"""The generic entry point: presets by name, overrides, and in-memory datasets that hold exactly
what the dataset file holds (images byte for byte, truth, extra inputs, manifest)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

import darklens
from darklens.data.h5 import LensDataset
from darklens.data.memory import InMemoryDataset
from darklens.simulate.api import simulate

# one tiny run per kind: (preset, size options, overrides)
RUNS = {
    "model_ii": ({"n_per_class": 3}, {"instrument.num_pix": 16}),
    "lensfind_ground": (
        {"n": 10, "lens_fraction": (0.5, 0.5, 0.5)},
        {"instrument.num_pix": 20},
    ),
    "transients_des_deep": ({"n": 8}, {}),
}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("preset", sorted(RUNS))
def test_memory_and_file_hold_the_same_bytes(preset, tmp_path):
    size, overrides = RUNS[preset]
    memory = simulate(preset, seed=4, overrides=overrides, batch_size=3, **size)
    path = simulate(preset, tmp_path / "d.h5", seed=4, overrides=overrides, **size).path
    assert isinstance(memory, InMemoryDataset)
    with LensDataset(path) as ds:
        assert memory.images.tobytes() == ds.images().tobytes()
        np.testing.assert_array_equal(memory.labels, ds.labels)
        np.testing.assert_array_equal(memory.split_codes, ds.split_codes)
        assert memory.class_names == ds.class_names and memory.manifest == ds.manifest
        assert memory.truth_columns == ds.truth_columns and memory.truth_columns
        for name in ds.truth_columns:
            np.testing.assert_array_equal(memory.truth[name], ds.truth(name), err_msg=name)
            assert memory.truth[name].dtype == ds.truth(name).dtype
        assert memory.input_names == ds.input_names
        for name in ds.input_names:
            assert memory.inputs[name].tobytes() == ds.inputs(name).tobytes()
    # saving the in-memory dataset gives the simulated file's bytes, and so does a reload
    saved = memory.save(tmp_path / "saved.h5")
    assert _sha(saved) == _sha(path)
    reloaded = InMemoryDataset.load(path).save(tmp_path / "reloaded.h5")
    assert _sha(reloaded) == _sha(path)


def test_transients_carry_light_curves_in_memory():
    memory = simulate("transients_des_deep", n=4, seed=1)
    assert memory.input_names == ["light_curves"]
    curves = memory.inputs["light_curves"]
    assert curves.dtype == np.float32 and curves.shape[0] == 4 and curves.shape[2] == 4


def test_same_seed_same_arrays_other_seed_other_arrays():
    size, overrides = RUNS["model_ii"]
    a = simulate("model_ii", seed=1, overrides=overrides, **size)
    b = simulate("model_ii", seed=1, overrides=overrides, workers=2, batch_size=2, **size)
    c = simulate("model_ii", seed=2, overrides=overrides, **size)
    assert a.images.tobytes() == b.images.tobytes()
    assert not np.array_equal(a.images, c.images)


def test_the_package_is_callable_as_simulate():
    size, overrides = RUNS["model_ii"]
    by_package = darklens.simulate("model_ii", seed=0, overrides=overrides, **size)
    by_function = darklens.simulate.simulate("model_ii", seed=0, overrides=overrides, **size)
    assert by_package.images.tobytes() == by_function.images.tobytes()
    assert by_package.image_shape == (1, 16, 16)


def test_darklens_simulate_works_after_import_darklens_alone():
    code = (
        "import darklens\n"
        "ds = darklens.simulate('lensfind_space', n=4, lens_fraction=(0.5, 0.5, 0.5), "
        "overrides={'instrument.num_pix': 16})\n"
        "print(len(ds), ds.class_names)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "4 ['non_lens', 'lens']"


def test_unknown_presets_and_wrong_size_options_are_named():
    with pytest.raises(KeyError, match="model_ii"):
        simulate("model_v", n_per_class=2)
    with pytest.raises(Exception, match="--n-per-class"):
        simulate("model_ii", n=6)


def test_an_in_memory_dataset_that_cannot_fit_is_refused_before_rendering():
    from darklens.guards import SizeLimitError

    with pytest.raises(SizeLimitError, match="in-memory dataset of 3,000,000,000 images"):
        simulate("model_ii", n_per_class=1_000_000_000)
