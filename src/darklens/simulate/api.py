"""Resolve a simulation config from a preset, a YAML file and CLI overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from darklens.config import ConfigError
from darklens.simulate.config import SubstructureConfig
from darklens.simulate.presets import get_preset


def resolve_config(
    preset: str,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    deeplense_compat: bool | None = None,
) -> SubstructureConfig:
    """Preset, then the YAML file's fields merged over it, then dotted overrides, then the flag."""
    config = get_preset(preset)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a YAML mapping of settings")
        config = config.merged(data)
    if overrides:
        config = config.override(overrides)
    if deeplense_compat is not None:
        config = config.override({"deeplense_compat": deeplense_compat})
    return config
