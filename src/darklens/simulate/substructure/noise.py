"""The observed substructure image for a noiseless one, with that image's noise generator."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from darklens.data.transforms import resize
from darklens.simulate.func.noise import add_ccd_noise, add_count_noise
from darklens.simulate.substructure.config import InstrumentConfig, SubstructureConfig
from darklens.simulate.substructure.views import ImageView


def apply_noise(
    image: np.ndarray,
    config: SubstructureConfig,
    rng: np.random.Generator,
    exposure_s: float,
    view: ImageView | None = None,
) -> np.ndarray:
    """The observed image for one noiseless model image (float32); with a per-image ``view``,
    as that view says."""
    if view is not None:
        return observed_view_image(image, view, rng, config.instrument.num_pix)
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


def observed_view_image(
    image: np.ndarray, view: ImageView, rng: np.random.Generator, num_pix: int
) -> np.ndarray:
    """Noise as ``view.noise`` says, then the flux scale, then (Model IV) clip at 0 and divide
    by the maximum; then resized to ``num_pix`` pixels if the view rendered on another grid."""
    image = image.astype(np.float64)
    if view.noise == "twice":
        observed = image + image
    elif view.noise == "ccd":
        observed = add_ccd_noise(image, rng, view.background_sigma, view.exposure_s)
    elif view.noise == "counts":
        observed = add_count_noise(image, rng, view.background_sigma, view.exposure_s)
    else:
        observed = image
    observed = observed * view.flux_scale
    if view.normalize_max:
        peak = observed.max()
        observed = np.clip(observed, 0.0, None) / (peak if peak > 0 else 1.0)
    if observed.shape[-1] != num_pix:
        tensor = torch.from_numpy(observed.astype(np.float32))[None, None]
        return resize(tensor, num_pix)[0, 0].numpy()
    return observed.astype(np.float32)
