"""Contract test over every registered simulator kind and preset (as tests/models runs over every
model): each preset renders 4 images with the promised shapes, truth and extra inputs, the same
bytes whether rendered one by one or together, and its config survives a YAML round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darklens.config import ConfigError
from darklens.simulate.kinds import (
    SizeRequest,
    get_any_preset,
    kind_of,
    preset_names,
    simulator_kinds,
)

PRESETS = preset_names()


def test_every_builtin_kind_is_registered_with_presets():
    kinds = simulator_kinds()
    assert [k.name for k in kinds] == ["substructure", "lens_finding", "lensed_transients"]
    names = [name for k in kinds for name in k.presets.names()]
    assert len(names) == len(set(names)) and len(names) >= 9
    for kind in kinds:
        assert all(kind_of(kind.presets.get(n)) is kind for n in kind.presets.names())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_renders_the_same_bytes_one_by_one_and_together(name):
    config = get_any_preset(name)
    kind = kind_of(config)
    renderer = kind.renderer(config, "cpu")
    labels = np.arange(4) % len(config.class_names)
    together = kind.render_block(renderer, 11, 0, 4, labels)
    alone = [kind.render_block(renderer, 11, i, i + 1, labels[i : i + 1]) for i in range(4)]

    assert together.images.shape == (4, *kind.image_shape(config))
    assert together.images.dtype == np.float32 and np.all(np.isfinite(together.images))
    assert np.array_equal(together.images, np.concatenate([b.images for b in alone]))
    columns = kind.truth_columns(config)
    assert set(together.truth) == set(columns)
    for column, (shape, dtype) in columns.items():
        values = together.truth[column]
        assert values.shape == (4, *shape), column
        assert np.can_cast(values.dtype, np.dtype(dtype), "same_kind"), column
        joined = np.concatenate([b.truth[column] for b in alone])
        np.testing.assert_array_equal(values, joined, err_msg=column)
    assert set(together.inputs) == set(kind.extra_inputs(config))
    for input_name, shape in kind.extra_inputs(config).items():
        assert together.inputs[input_name].shape == (4, *shape)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", PRESETS)
def test_parameters_are_the_same_on_cpu_and_gpu(name):
    """Truth (every drawn parameter) is equal bit for bit; pixels differ by float rounding."""
    config = get_any_preset(name)
    kind = kind_of(config)
    labels = np.arange(6) % len(config.class_names)
    cpu = kind.render_block(kind.renderer(config, "cpu"), 3, 0, 6, labels)
    gpu = kind.render_block(kind.renderer(config, "cuda"), 3, 0, 6, labels)
    for column in kind.truth_columns(config):
        if column not in ("lensed_snr", "lensed_snr_bands", "magnification"):  # measured
            np.testing.assert_array_equal(cpu.truth[column], gpu.truth[column], err_msg=column)
    if config.instrument.noise == "counts":  # Poisson counts: NumPy's on a CPU, other draws
        assert abs(gpu.images.mean() / cpu.images.mean() - 1) < 0.01
        return
    scale = np.abs(cpu.images).max()
    # rounding differs in the last bits only
    assert np.mean(np.abs(gpu.images - cpu.images) > 1e-4 * scale) < 1e-3


@pytest.mark.parametrize("name", PRESETS)
def test_preset_config_round_trips_through_yaml_and_summarises(name):
    config = get_any_preset(name)
    kind = kind_of(config)
    assert kind.config_type.from_yaml(config.to_yaml()) == config
    assert name in kind.summary(config)


@pytest.mark.parametrize("name", PRESETS)
def test_each_kind_refuses_size_options_it_does_not_take(name):
    config = get_any_preset(name)
    kind = kind_of(config)
    accepted = [
        s for s in (SizeRequest(n=8), SizeRequest(n_per_class=8)) if _accepts(kind, config, s)
    ]
    assert len(accepted) == 1  # a kind sizes runs one way
    layout = kind.layout(config, accepted[0], kind.default_split, seed=0)
    total = kind.count(config, accepted[0])
    assert len(layout.labels) == len(layout.split_codes) == total
    assert set(np.unique(layout.labels)) <= set(range(len(config.class_names)))


def _accepts(kind, config, size) -> bool:
    try:
        kind.count(config, size)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("kind", simulator_kinds(), ids=lambda k: k.name)
def test_every_manifest_records_the_common_fields_once(kind):
    name = kind.presets.names()[0]
    config = kind.presets.get(name)
    size = SizeRequest(n_per_class=2) if kind.name == "substructure" else SizeRequest(n=6)
    renderer = kind.renderer(config, "cpu")
    manifest = kind.dataset_manifest(config, renderer, 3, size, (0.5, 0.25, 0.25))
    assert manifest["kind"] == kind.name and manifest["preset"] == name and manifest["seed"] == 3
    assert manifest["split_fractions"] == [0.5, 0.25, 0.25]
    assert manifest["citations"][0]["key"] == "darklens"
    assert not {"kind", "preset", "seed", "citations"} & set(kind.manifest(config, renderer, size))
