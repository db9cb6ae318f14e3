"""The observed substructure images: a block of noiseless ones on their device, or one image
with its per-image view's noise (the general path of configs with per-image settings)."""

from __future__ import annotations

import numpy as np
import torch

from darklens.data.transforms import resize
from darklens.simulate.func.noise import (
    add_ccd_noise,
    add_count_noise,
    ccd_noise_tensor,
    count_noise_tensor,
)
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.views import ImageView


def apply_noise(
    images: torch.Tensor,
    config: SubstructureConfig,
    keys: torch.Tensor,
    exposure_s: torch.Tensor,
) -> torch.Tensor:
    """Observed float32 images [B, H, W] for noiseless ones, from each image's noise stream
    ``keys`` [B] (int64) and exposure [B] (s)."""
    inst = config.instrument
    if config.deeplense_compat and config.compat.twice_noiseless_model:
        # DeepLenseSim's simple_sim_2 stores image_model + image_model and discards its noise.
        observed = images + images
    elif inst.noise == "ccd":
        observed = ccd_noise_tensor(images, keys, inst.background_sigma, exposure_s)
    elif inst.noise == "counts":
        observed = count_noise_tensor(images, keys, inst.background_rms, exposure_s)
    else:
        observed = images
    return observed.to(torch.float32)



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
