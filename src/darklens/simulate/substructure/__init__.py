"""Substructure simulator (DeepLense Models I–III): SIE + shear lenses with no substructure,
CDM point-mass subhalos or an axion vortex, a Sérsic source, and each model's instrument."""

from darklens.simulate.substructure.config import (
    AxionConfig,
    CDMConfig,
    InstrumentConfig,
    LensConfig,
    SourceConfig,
    SubstructureConfig,
)
from darklens.simulate.substructure.presets import PRESETS, get_preset

__all__ = [
    "AxionConfig",
    "CDMConfig",
    "InstrumentConfig",
    "LensConfig",
    "PRESETS",
    "SourceConfig",
    "SubstructureConfig",
    "get_preset",
]
