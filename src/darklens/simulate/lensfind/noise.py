"""Per-band CCD noise (lenstronomy's model, shared with the substructure simulator) and the
signal-to-noise of the lensed source under it."""

from __future__ import annotations

import numpy as np

from darklens.simulate.lensfind.config import BandConfig, LensFindConfig
from darklens.simulate.substructure.config import InstrumentConfig
from darklens.simulate.substructure.noise import add_ccd_noise, background_noise_e_per_s


def band_background_sigma(band: BandConfig, pixel_scale_arcsec: float) -> float:
    """Gaussian background σ per pixel (e-/s) from sky, read noise and total exposure."""
    instrument = InstrumentConfig(
        name=band.name,
        pixel_scale_arcsec=pixel_scale_arcsec,
        psf_fwhm_arcsec=band.seeing_fwhm_range_arcsec[0],
        noise="ccd",
        exposure_time_s=band.exposure_time_s,
        num_exposures=band.num_exposures,
        sky_brightness_mag_arcsec2=band.sky_brightness_mag_arcsec2,
        magnitude_zero_point=band.magnitude_zero_point,
        read_noise_e=band.read_noise_e,
        ccd_gain=band.ccd_gain,
    )
    return background_noise_e_per_s(instrument)


def noise_levels(config: LensFindConfig) -> tuple[np.ndarray, np.ndarray]:
    """(background σ [bands] in e-/s per pixel, total exposure [bands] in s)."""
    inst = config.instrument
    sigma = np.array([band_background_sigma(b, inst.pixel_scale_arcsec) for b in inst.bands])
    exposure = np.array([b.total_exposure_s for b in inst.bands])
    return sigma, exposure


def observe(
    model: np.ndarray,
    rng: np.random.Generator,
    background: np.ndarray,
    exposure: np.ndarray,
) -> np.ndarray:
    """Noisy float32 image [bands, H, W] from a noiseless one, band by band with one generator."""
    bands = [
        add_ccd_noise(model[b].astype(np.float64), rng, background[b], exposure[b])
        for b in range(model.shape[0])
    ]
    return np.stack(bands).astype(np.float32)


def lensed_snr(
    source_model: np.ndarray, model: np.ndarray, background: np.ndarray, exposure: np.ndarray
) -> np.ndarray:
    """Matched-filter S/N of the lensed source per band: sqrt(Σ_pixels s² / σ²), with
    σ² = background² + max(model, 0)/t the variance of lenstronomy's noise for the full image."""
    s = source_model.astype(np.float64)
    variance = background[:, None, None] ** 2 + np.maximum(model, 0.0) / exposure[:, None, None]
    return np.sqrt(np.array([np.sum(s[b] ** 2 / variance[b]) for b in range(s.shape[0])]))
