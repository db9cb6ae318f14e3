"""Lensed-transient simulator: multi-epoch g, r, i, z cutouts, coadds and light curves.

Classes ("no_lens", "galaxy_lens", "lensed_sn_ia", "lensed_sn_cc") as DeepGraviLens; presets
``transients_des_deep``, ``transients_desi_dot`` and ``transients_lsst_wide`` live in
:data:`TRANSIENT_PRESETS`; ``darklens.simulate.simulate`` writes a dataset file whose extra input
``light_curves`` [N, T, 4] goes with the coadded ``images`` [N, 4, 45, 45].
"""

from darklens.simulate.transients.config import (
    CLASS_NAMES,
    NON_LENS_KINDS,
    OBJECT_KINDS,
    SupernovaConfig,
    SupernovaTypeConfig,
    TransientBandConfig,
    TransientsConfig,
    TransientSurveyConfig,
)
from darklens.simulate.transients.kind import aperture_photometry, transient_layout
from darklens.simulate.transients.lensing import LensedImages, solve_images
from darklens.simulate.transients.lightcurves import bazin_flux, bazin_peak_offset
from darklens.simulate.transients.presets import TRANSIENT_PRESETS, get_transient_preset
from darklens.simulate.transients.render import TransientRenderer
from darklens.simulate.transients.sampling import draw_transient_params

__all__ = [
    "CLASS_NAMES",
    "LensedImages",
    "NON_LENS_KINDS",
    "OBJECT_KINDS",
    "SupernovaConfig",
    "SupernovaTypeConfig",
    "TRANSIENT_PRESETS",
    "TransientBandConfig",
    "TransientRenderer",
    "TransientSurveyConfig",
    "TransientsConfig",
    "aperture_photometry",
    "bazin_flux",
    "bazin_peak_offset",
    "draw_transient_params",
    "get_transient_preset",
    "solve_images",
    "transient_layout",
]
