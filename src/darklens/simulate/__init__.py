"""Simulation: simulator kinds (substructure, lens finding, lensed transients) behind one engine.

``simulate(config, out, ...)`` writes a dataset for a preset's config of any kind
(:func:`resolve_config` builds it from a preset name, a YAML file and dotted overrides).
Subpackages: :mod:`.func` (pure physics), :mod:`.substructure`, :mod:`.lensfind`,
:mod:`.transients` (one kind each), :mod:`.kinds` (the protocol and registry).
"""

from darklens.simulate.api import (
    get_any_preset,
    image_count,
    preset_names,
    preset_summary,
    resolve_config,
    simulate,
)
from darklens.simulate.blocks import SimulationResult
from darklens.simulate.kinds import Block, SimulatorKind, kind_of, simulator_kinds

__all__ = [
    "Block",
    "SimulationResult",
    "SimulatorKind",
    "get_any_preset",
    "image_count",
    "kind_of",
    "preset_names",
    "preset_summary",
    "resolve_config",
    "simulate",
    "simulator_kinds",
]
