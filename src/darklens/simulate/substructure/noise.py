"""The observed substructure images for a block of noiseless ones, on their device."""

from __future__ import annotations

import torch

from darklens.simulate.func.noise import ccd_noise_tensor, count_noise_tensor
from darklens.simulate.substructure.config import SubstructureConfig


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
