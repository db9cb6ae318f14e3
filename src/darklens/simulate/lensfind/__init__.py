"""Lens-finding simulator: lenses and look-alike non-lenses in one or more bands.

Presets ``lensfind_space`` (Euclid-VIS-like), ``lensfind_ground`` (KiDS-like u, g, r, i),
``lensfind_lsst`` (Rubin LSST-like g, r, i) and ``lensfind_deeplense`` (3 bands × 64 × 64) live
in :data:`LENSFIND_PRESETS`; ``darklens.simulate.simulate`` writes a dataset with classes
("non_lens", "lens"). Populations follow Collett (2015) / LensPop (:mod:`.config`); lenses meet
a lens definition (:mod:`.detect`).
"""

from darklens.simulate.lensfind.config import (
    CLASS_NAMES,
    LENS_DEFINITIONS,
    LOOKALIKE_KINDS,
    BandConfig,
    ColourConfig,
    DeflectorPopulationConfig,
    LensDefinitionConfig,
    LensFindConfig,
    LookalikeConfig,
    SourcePopulationConfig,
    SurveyConfig,
)
from darklens.simulate.lensfind.detect import Detectability, meets_definition
from darklens.simulate.lensfind.kind import lensfind_layout
from darklens.simulate.lensfind.presets import LENSFIND_PRESETS, get_lensfind_preset
from darklens.simulate.lensfind.render import LensFindRenderer
from darklens.simulate.lensfind.sampling import draw_lensfind_params

__all__ = [
    "BandConfig",
    "CLASS_NAMES",
    "ColourConfig",
    "DeflectorPopulationConfig",
    "Detectability",
    "LENSFIND_PRESETS",
    "LENS_DEFINITIONS",
    "LOOKALIKE_KINDS",
    "LensDefinitionConfig",
    "LensFindConfig",
    "LensFindRenderer",
    "LookalikeConfig",
    "SourcePopulationConfig",
    "SurveyConfig",
    "draw_lensfind_params",
    "get_lensfind_preset",
    "lensfind_layout",
    "meets_definition",
]
