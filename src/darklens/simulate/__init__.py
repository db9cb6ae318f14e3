"""Simulation: simulator kinds (substructure, lens finding, lensed transients) behind one engine.

``simulate(preset_or_config, out=None, ...)`` simulates a dataset of any kind into memory (an
:class:`~darklens.data.memory.InMemoryDataset`) or, given ``out``, into a dataset file
(:func:`resolve_config` builds a config from a preset name, a YAML file and dotted overrides).
The package itself is callable as that function, so ``darklens.simulate("model_ii", ...)`` and
``darklens.simulate.simulate("model_ii", ...)`` are the same call.

Subpackages: :mod:`.func` (pure physics), :mod:`.substructure`, :mod:`.lensfind`,
:mod:`.transients` (one kind each), :mod:`.kinds` (the protocol and registry).
"""

import sys
import types

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


class _CallablePackage(types.ModuleType):
    """This package's module type: calling the package calls :func:`simulate`.

    A function ``darklens.simulate`` beside the subpackage cannot work: importing the subpackage
    sets the attribute ``darklens.simulate`` to the module and would hide the function.
    """

    def __call__(self, *args, **kwargs):
        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
