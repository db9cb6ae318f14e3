"""Frozen configs: validation, YAML round trips, overrides."""

import pytest

from darklens.config import ConfigError, parse_assignments
from darklens.simulate.api import resolve_config
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.presets import get_preset


@pytest.mark.parametrize("name", ["model_i", "model_ii", "model_iii"])
def test_yaml_round_trip(name, tmp_path):
    config = get_preset(name)
    path = tmp_path / "c.yaml"
    config.to_yaml(path)
    assert SubstructureConfig.from_yaml(path) == config


def test_dotted_overrides_parse_values():
    config = get_preset("model_ii").override(
        {"source.magnitude": "21.5", "cdm.n_subhalos": "10", "class_names": "[no_sub, cdm]"}
    )
    assert config.source.magnitude == 21.5
    assert config.cdm.n_subhalos == 10
    assert config.class_names == ("no_sub", "cdm")
    assert config.instrument == get_preset("model_ii").instrument


@pytest.mark.parametrize(
    "override, message",
    [
        ({"instrument.noise": "loud"}, "instrument.noise"),
        ({"lens.z_source": "0.1"}, "z_lens"),
        ({"source.amplitude": "5"}, "exactly one"),
        ({"cdm.n_subhalos": "many"}, "integer"),
        ({"cdm.bogus": "1"}, "unknown setting"),
        ({"class_names": "[no_sub, wdm]"}, "unknown class"),
    ],
)
def test_bad_settings_fail_when_built(override, message):
    with pytest.raises(ConfigError, match=message):
        get_preset("model_ii").override(override)


def test_resolve_config_layers(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("source:\n  magnitude: 22\ninstrument:\n  num_pix: 48\n")
    config = resolve_config("model_ii", path, {"source.magnitude": "23"}, deeplense_compat=True)
    assert config.source.magnitude == 23  # CLI beats the file
    assert config.instrument.num_pix == 48
    assert config.instrument.pixel_scale_arcsec == 0.101  # the rest comes from the preset
    assert config.deeplense_compat is True
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config("model_ii", tmp_path / "missing.yaml")


def test_parse_assignments():
    assert parse_assignments(["a.b=1", "c= x "]) == {"a.b": "1", "c": "x"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["novalue"])
