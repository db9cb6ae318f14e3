"""Frozen, validated configuration dataclasses that round-trip to YAML.

Every darklens setting lives in a frozen dataclass deriving from :class:`Config`. Subclasses check
their values in ``__post_init__`` (so a bad setting fails when the config is built, not minutes into
a run), and the base class gives them ``to_dict`` / ``from_dict`` / YAML round trips and dotted
overrides (``source.magnitude=21``) for the CLI.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def load_yaml(text: str, source: str | Path) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes a one-line ConfigError naming
    ``source``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {' '.join(str(err).split())}") from None


def _is_config_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Config)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a plain YAML/JSON value to the annotated field type, or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: a value is required")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError("; ".join(errors))
    if _is_config_type(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return tp.from_dict(value, _where=where)
    if origin is tuple:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in pairs)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: frozen dataclass with dict/YAML round trips and dotted overrides."""

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        return typing.get_type_hints(cls)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, _where: str = "") -> Self:
        hints = cls._hints()
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            prefix = f"{_where}: " if _where else ""
            raise ConfigError(
                f"{prefix}unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                f"valid: {', '.join(names)}"
            )
        kwargs = {
            name: _coerce(data[name], hints[name], f"{_where}.{name}" if _where else name)
            for name in names
            if name in data
        }
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ConfigError(f"{cls.__name__}: {err}") from None

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, source: str | Path) -> Self:
        """Build from a YAML file path or a YAML string."""
        path = Path(source) if not str(source).lstrip().startswith("{") else None
        if path is not None and path.suffix in {".yaml", ".yml"}:
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            text, origin = path.read_text(), str(path)
        else:
            text, origin = str(source), "YAML text"
        data = load_yaml(text, origin)
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"expected a YAML mapping for {cls.__name__}, got {type(data).__name__}"
            )
        return cls.from_dict(data)

    def merged(self, updates: Mapping[str, Any]) -> Self:
        """A copy with nested updates applied (a partial dict, e.g. read from a YAML file)."""
        return type(self).from_dict(_deep_merge(self.to_dict(), updates))

    def override(self, assignments: Mapping[str, Any]) -> Self:
        """A copy with dotted-path overrides applied: ``{"source.magnitude": 21}``.

        String values are parsed as YAML scalars, so ``"21"`` becomes 21 and ``"[1, 2]"`` a list.
        """
        return self.merged(dotted_updates(assignments))


def dotted_updates(assignments: Mapping[str, Any]) -> dict[str, Any]:
    """Nested updates from dotted-path assignments (string values parsed as YAML scalars), to
    merge in one step with others (so no half-applied combination is validated on its own)."""
    updates: dict[str, Any] = {}
    for dotted, value in assignments.items():
        if isinstance(value, str):
            value = load_yaml(value, f"--set {dotted}") if value.strip() else value
        node = updates
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return updates


def deep_merge(base: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` merged in, nested mappings key by key."""
    return _deep_merge(dict(base), updates)


def _deep_merge(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse CLI ``key.path=value`` strings into a dict (values stay strings)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE (e.g. source.magnitude=21), got {item!r}")
        out[key.strip()] = value.strip()
    return out


def require(condition: bool, message: str) -> None:
    """Raise ConfigError with ``message`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ConfigError(message)


def require_range(
    name: str, pair: tuple[float, float], low: float | None = None, high: float | None = None
) -> None:
    """ConfigError unless ``pair`` is (low, high) in order and within [``low``, ``high``]."""
    lo, hi = pair
    require(lo <= hi, f"{name} must be (low, high), got {pair}")
    if low is not None:
        require(lo >= low, f"{name} must be >= {low}, got {pair}")
    if high is not None:
        require(hi <= high, f"{name} must be <= {high}, got {pair}")
