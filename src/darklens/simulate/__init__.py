"""Simulation: presets (frozen configs), per-image sampling, batched rendering, noise, engine."""

from darklens.simulate.substructure.config import (
    AxionConfig,
    CDMConfig,
    InstrumentConfig,
    LensConfig,
    SourceConfig,
    SubstructureConfig,
)
from darklens.simulate.substructure.engine import SimulationResult, simulate_dataset
from darklens.simulate.substructure.presets import PRESETS, get_preset

__all__ = [
    "AxionConfig",
    "CDMConfig",
    "InstrumentConfig",
    "LensConfig",
    "PRESETS",
    "SimulationResult",
    "SourceConfig",
    "SubstructureConfig",
    "get_preset",
    "simulate_dataset",
]
