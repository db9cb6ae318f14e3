"""Noise models applied to noiseless images, one image at a time with that image's generator."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from darklens.simulate.substructure.config import InstrumentConfig, SubstructureConfig


@lru_cache(maxsize=32)
def background_noise_e_per_s(instrument: InstrumentConfig) -> float:
    """Gaussian background σ per pixel (e-/s) from sky, read noise and exposure (lenstronomy)."""
    from lenstronomy.SimulationAPI.observation_api import SingleBand

    band = SingleBand(
        pixel_scale=instrument.pixel_scale_arcsec,
        exposure_time=instrument.exposure_time_s,
        magnitude_zero_point=instrument.magnitude_zero_point,
        read_noise=instrument.read_noise_e,
        ccd_gain=instrument.ccd_gain,
        sky_brightness=instrument.sky_brightness_mag_arcsec2,
        seeing=max(instrument.psf_fwhm_arcsec, 1e-3),
        num_exposures=instrument.num_exposures,
        psf_type="GAUSSIAN",
    )
    return float(band.background_noise)


def add_ccd_noise(
    image: np.ndarray, rng: np.random.Generator, background_sigma: float, exposure_s: float
) -> np.ndarray:
    """lenstronomy's ``noise_for_model``: Gaussian background plus Gaussian-approximated Poisson
    noise of the flux, σ = sqrt(max(image·t, 0))/t, for an image in e-/s."""
    background = rng.standard_normal(image.shape) * background_sigma
    shot = rng.standard_normal(image.shape) * (
        np.sqrt(np.maximum(image * exposure_s, 0.0)) / exposure_s
    )
    return image + background + shot


def add_count_noise(
    image: np.ndarray, rng: np.random.Generator, background_rms: float, exposure_s: float
) -> np.ndarray:
    """DeepLense Model I: counts = Poisson(max(t·(image + n_shot + n_bkg), 0)), integer-valued.

    n_shot ~ N(0, |image|/t) and n_bkg ~ N(0, background_rms²), as DeepLenseSim's ``simple_sim``.
    """
    shot = rng.standard_normal(image.shape) * np.sqrt(np.abs(image) / exposure_s)
    background = rng.standard_normal(image.shape) * background_rms
    expected = np.clip(exposure_s * (image + shot + background), 0.0, None)
    return rng.poisson(expected).astype(np.float64)


def apply_noise(
    image: np.ndarray, config: SubstructureConfig, rng: np.random.Generator, exposure_s: float
) -> np.ndarray:
    """The observed image for one noiseless model image (float32)."""
    inst = config.instrument
    image = image.astype(np.float64)
    if config.deeplense_compat and config.compat_noiseless:
        # DeepLenseSim Model II stores image_model + image_model and discards its noise.
        observed = image + image
    elif inst.noise == "ccd":
        observed = add_ccd_noise(image, rng, background_noise_e_per_s(inst), exposure_s)
    elif inst.noise == "counts":
        observed = add_count_noise(image, rng, inst.background_rms, exposure_s)
    else:
        observed = image
    return observed.astype(np.float32)
