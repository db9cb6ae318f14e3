"""The simulator-kind protocol: what every simulator (substructure, lens finding, lensed
transients, ...) provides so that one generic engine can plan, render and write its datasets.

A kind is a subpackage of :mod:`darklens.simulate` with a ``kind`` module holding ``KIND``, a
:class:`SimulatorKind` made of that subpackage's pure functions. Adding a kind = that subpackage
+ its module name in :data:`BUILTIN_KIND_MODULES`; the generic engine (:mod:`.api`), the CLI,
the preset listing and the contract test (``tests/simulate/test_kinds.py``) then cover it.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from darklens import __version__
from darklens.citations import dataset_citations
from darklens.config import Config, ConfigError
from darklens.data.h5 import SPLIT_NAMES
from darklens.registry import Registry

BUILTIN_KIND_MODULES = (
    "darklens.simulate.substructure.kind",
    "darklens.simulate.lensfind.kind",
    "darklens.simulate.transients.kind",
)
DEFAULT_SPLIT = (0.8, 0.1, 0.1)

TruthColumns = Mapping[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class Block:
    """What a kind renders for images start..stop-1: images [b, C, H, W] float32, truth columns
    [b, ...] and extra per-image inputs [b, ...] (e.g. light curves)."""

    images: np.ndarray
    truth: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    clean: np.ndarray | None = None  # the images without noise (kinds with ``store_clean``)


@dataclass(frozen=True)
class Layout:
    """Label (int64) and split code (uint8: 0 train, 1 val, 2 test) of every image."""

    labels: np.ndarray
    split_codes: np.ndarray


@dataclass(frozen=True)
class SizeRequest:
    """A run's size as the user gave it; each kind accepts some options and refuses the rest."""

    n: int | None = None
    n_per_class: int | None = None
    lens_fraction: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class SimulatorKind:
    """One simulator: its config type, presets and the pure functions the generic engine calls.

    - ``count(config, size) -> int``: total images; ConfigError naming the options it takes;
    - ``layout(config, size, split, seed) -> Layout``: every image's label and split;
    - ``renderer(config, device)``: an object with ``.config`` that ``render_block`` uses;
    - ``render_block(renderer, seed, start, stop, labels) -> Block``;
    - ``image_shape(config)``, ``truth_columns(config)`` (name → (shape, dtype)),
      ``extra_inputs(config)`` (name → per-image shape);
    - ``manifest(config, renderer, size) -> dict``: what the file records beyond
      the fields every kind writes (:meth:`dataset_manifest` adds those);
    - ``summary(config) -> str``: one line for ``darklens presets``;
    - optionally ``draw_block(config, seed, start, stop, labels)`` and ``render_drawn(renderer,
      seed, start, stop, labels, drawn)``, the two halves of ``render_block``, for kinds whose
      parameter draws are per-image Python: a GPU run then draws them in worker processes.
    """

    name: str  # the manifest's "kind"
    config_type: type[Config]
    presets: Registry
    count: Callable[[Any, SizeRequest], int]
    layout: Callable[[Any, SizeRequest, Sequence[float], int], Layout]
    renderer: Callable[[Any, str | torch.device], Any]
    render_block: Callable[[Any, int, int, int, np.ndarray], Block]
    image_shape: Callable[[Any], tuple[int, int, int]]
    truth_columns: Callable[[Any], TruthColumns]
    manifest: Callable[[Any, Any, SizeRequest], dict[str, Any]]
    summary: Callable[[Any], str]
    extra_inputs: Callable[[Any], dict[str, tuple[int, ...]]] = lambda config: {}
    draw_block: Callable[[Any, int, int, int, np.ndarray], Any] | None = None
    render_drawn: Callable[[Any, int, int, int, np.ndarray, Any], Block] | None = None
    default_split: tuple[float, float, float] = DEFAULT_SPLIT
    default_batch_size: int = 256

    def dataset_manifest(
        self, config: Any, renderer: Any, seed: int, size: SizeRequest, split: Sequence[float]
    ) -> dict[str, Any]:
        """The manifest a dataset of this kind records: the fields common to every kind (kind,
        preset, config, seed, splits, darklens version, citations) then the kind's own."""
        return {
            "kind": self.name,
            "preset": config.preset,
            "config": config.to_dict(),
            "seed": seed,
            "split_fractions": list(split),
            "split_names": list(SPLIT_NAMES),
            **self.manifest(config, renderer, size),
            "darklens_version": __version__,
            "citations": dataset_citations(config.preset),
        }


KINDS: Registry[SimulatorKind] = Registry("simulator kind")
_loaded = False


def simulator_kinds() -> list[SimulatorKind]:
    """Every registered kind, in :data:`BUILTIN_KIND_MODULES` order (imported on first use)."""
    global _loaded
    if not _loaded:
        for module_name in BUILTIN_KIND_MODULES:
            kind = importlib.import_module(module_name).KIND
            if kind.name not in KINDS:
                KINDS.add(kind.name, kind)
        _loaded = True
    order = [importlib.import_module(m).KIND.name for m in BUILTIN_KIND_MODULES]
    return [KINDS.get(name) for name in order] + [
        KINDS.get(name) for name in KINDS.names() if name not in order
    ]


def kind_of(config: Any) -> SimulatorKind:
    """The kind whose config type ``config`` is."""
    for kind in simulator_kinds():
        if type(config) is kind.config_type:
            return kind
    raise TypeError(f"{type(config).__name__} is not the config of a registered simulator kind")


def preset_names() -> list[str]:
    """Every preset of every kind (kinds in registration order, presets sorted)."""
    return [name for kind in simulator_kinds() for name in kind.presets.names()]


def get_any_preset(name: str) -> Any:
    """The preset config of any kind, or KeyError naming the close matches and all presets."""
    for kind in simulator_kinds():
        if name in kind.presets:
            return kind.presets.get(name)
    known = preset_names()
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise KeyError(f"unknown preset {name!r}.{hint} Known: {', '.join(known)}")


def refuse_options(preset: str, what: str, size: SizeRequest, allowed: Sequence[str]) -> None:
    """ConfigError when ``size`` sets an option outside ``allowed`` (names as on the CLI)."""
    given = {
        "--n": size.n is not None,
        "--n-per-class": size.n_per_class is not None,
        "--lens-fraction": size.lens_fraction is not None,
    }
    refused = [option for option, is_set in given.items() if is_set and option not in allowed]
    if refused:
        raise ConfigError(
            f"{preset} is a {what} preset: give its size with {' and '.join(allowed)}, "
            f"not {' or '.join(refused)}"
        )


def requested(value: int | None, default: int, option: str) -> int:
    """A size option's value (``default`` when not given), at least 1."""
    chosen = default if value is None else value
    if chosen < 1:
        raise ValueError(f"{option.lstrip('-').replace('-', '_')} must be >= 1, got {chosen}")
    return chosen
