"""The observed substructure image for a noiseless one, with that image's noise generator."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from darklens.simulate.func.noise import add_ccd_noise, add_count_noise
from darklens.simulate.substructure.config import InstrumentConfig, SubstructureConfig


def apply_noise(
    image: np.ndarray, config: SubstructureConfig, rng: np.random.Generator, exposure_s: float
) -> np.ndarray:
    """The observed image for one noiseless model image (float32)."""
    inst = config.instrument
    image = image.astype(np.float64)
    if config.deeplense_compat and config.compat.twice_noiseless_model:
        # DeepLenseSim's simple_sim_2 stores image_model + image_model and discards its noise.
        observed = image + image
    elif inst.noise == "ccd":
        observed = add_ccd_noise(image, rng, _background_sigma(inst), exposure_s)
    elif inst.noise == "counts":
        observed = add_count_noise(image, rng, inst.background_rms, exposure_s)
    else:
        observed = image
    return observed.astype(np.float32)


@lru_cache(maxsize=32)
def _background_sigma(instrument: InstrumentConfig) -> float:
    return instrument.background_sigma
