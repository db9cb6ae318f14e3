"""Simulate a lensed-transient dataset into a darklens HDF5 file, in parallel and reproducibly.

Layout: class c gets exactly n//4 (+1 for the first n % 4 classes) objects, interleaved
(label i = i mod 4), and each class is split into train/val/test with exact, seeded counts.
Object i's pixels, light curve and truth depend only on (config, seed, i, its label), never on
the batch size or the number of workers (blocks go through :mod:`darklens.simulate.blocks`).

What is stored (DeepGraviLens's inputs before their preprocessing):

- ``images`` [N, bands, H, W]: the per-band mean over epochs of the noisy epoch images (e-/s per
  pixel). DeepGraviLens then min–max scales each band to [0, 1]; that is preprocessing and is not
  applied here.
- ``inputs/light_curves`` [N, T, bands]: aperture fluxes (e-/s) per epoch and band, the sum over
  pixels within ``aperture_radius_px`` of the centre minus the median of the pixels outside it,
  measured on the noisy epoch images (min–max scaled by DeepGraviLens, not here).
- ``inputs/epoch_images`` [N, T, bands, H, W]: the noisy epoch images, only with
  ``instrument.store_epoch_images``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from darklens import __version__
from darklens.data.h5 import SPLIT_NAMES
from darklens.simulate.blocks import (
    SimulationResult,
    one_cpu_thread,
    plan_blocks,
    write_rendered_dataset,
)
from darklens.simulate.substructure.noise import add_ccd_noise
from darklens.simulate.substructure.sampling import NOISE_STREAM, PARAMS_STREAM, image_rng
from darklens.simulate.transients.config import (
    CLASS_NAMES,
    OBJECT_KINDS,
    TransientsConfig,
)
from darklens.simulate.transients.lensing import MAX_IMAGES
from darklens.simulate.transients.render import TransientRenderer
from darklens.simulate.transients.sampling import TransientParams, draw_transient_params

_SPLIT_KEY = (0xFFFFFFFF, 7)


def transient_layout(n: int, split: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(split code per object: 0 train, 1 val, 2 test; label per object, i mod 4)."""
    fractions = tuple(float(f) for f in split)
    if (
        len(fractions) != 3
        or any(f < 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    codes = np.empty(n, dtype=np.uint8)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_SPLIT_KEY))
    for label in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == label)
        n_train = round(fractions[0] * len(members))
        n_val = min(round(fractions[1] * len(members)), len(members) - n_train)
        per_class = np.full(len(members), 2, dtype=np.uint8)
        per_class[:n_train] = 0
        per_class[n_train : n_train + n_val] = 1
        codes[members] = rng.permutation(per_class)
    return codes, labels


def noise_levels(config: TransientsConfig, sky_mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background σ [T, bands] in e-/s per pixel for the epochs' sky, exposure [bands] in s),
    with lenstronomy's background formula (sky, read noise, exposure)."""
    from lenstronomy.Util.data_util import bkg_noise

    inst = config.instrument
    zero_points = np.array([b.magnitude_zero_point for b in inst.bands])
    sky_cps = 10.0 ** (-0.4 * (sky_mag - zero_points))  # e-/s per arcsec²
    exposure = np.array([b.exposure_time_s for b in inst.bands])
    visits = np.array([b.num_exposures for b in inst.bands])
    read_noise = np.array([b.read_noise_e for b in inst.bands])
    sigma = bkg_noise(read_noise, exposure, sky_cps, inst.pixel_scale_arcsec, visits)
    return np.asarray(sigma, dtype=np.float64), exposure * visits


def aperture_photometry(epochs: np.ndarray, radius_px: float) -> np.ndarray:
    """[..., H, W] → [...]: Σ over pixels within ``radius_px`` of the centre of (image − median
    of the pixels outside the aperture)."""
    height, width = epochs.shape[-2:]
    rows, cols = np.mgrid[0:height, 0:width]
    inside = np.hypot(rows - (height - 1) / 2.0, cols - (width - 1) / 2.0) <= radius_px
    background = np.median(epochs[..., ~inside], axis=-1)
    return np.sum(epochs[..., inside], axis=-1) - inside.sum() * background


def truth_columns(config: TransientsConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-object truth (angles arcsec, times days from the first epoch, magnitudes AB).

    object_kind (code into the manifest's ``object_kinds``); z_lens (the lens's, or a lone or
    paired look-alike galaxy's redshift), z_source (the lensed source's or supernova's); both NaN
    where absent; theta_e_arcsec (NaN for non-lenses); n_sn_images (0 without a
    supernova, 1 unlensed); per supernova image in arrival order, NaN-padded to 4:
    time_delays_days (after the first image), magnifications (signed), sn_image_x/y_arcsec;
    sn_peak_magnitude_bands (unlensed); sn_explosion_day, sn_peak_day (of the first image);
    seeing_fwhm_arcsec and sky_mag_arcsec2 per epoch and band.
    """
    inst = config.instrument
    bands, epochs = len(inst.bands), inst.n_epochs
    columns: dict[str, tuple[tuple[int, ...], str]] = {
        "object_kind": ((), "int8"),
        "n_sn_images": ((), "int8"),
    }
    for name in ("z_lens", "z_source", "theta_e_arcsec", "sn_explosion_day", "sn_peak_day"):
        columns[name] = ((), "float64")
    for name in ("time_delays_days", "magnifications", "sn_image_x_arcsec", "sn_image_y_arcsec"):
        columns[name] = ((MAX_IMAGES,), "float64")
    columns["sn_peak_magnitude_bands"] = ((bands,), "float64")
    columns["seeing_fwhm_arcsec"] = ((epochs, bands), "float64")
    columns["sky_mag_arcsec2"] = ((epochs, bands), "float64")
    return columns


def _truth(params: list[TransientParams], n_bands: int) -> dict[str, np.ndarray]:
    def column(get) -> np.ndarray:
        return np.array([get(p) for p in params], dtype=np.float64)

    def padded(get) -> np.ndarray:
        out = np.full((len(params), MAX_IMAGES), np.nan)
        for j, p in enumerate(params):
            if p.images is not None:
                values = get(p.images)
                out[j, : len(values)] = values
        return out

    nan = float("nan")
    return {
        "object_kind": np.array([p.kind for p in params], dtype=np.int8),
        "n_sn_images": np.array(
            [p.images.count if p.images is not None else 0 for p in params], dtype=np.int8
        ),
        "z_lens": column(lambda p: p.z_lens),
        "z_source": column(lambda p: p.z_source),
        "theta_e_arcsec": column(lambda p: p.theta_e),
        "sn_explosion_day": column(lambda p: p.supernova.explosion_day if p.supernova else nan),
        "sn_peak_day": column(lambda p: p.supernova.peak_day if p.supernova else nan),
        "time_delays_days": padded(lambda im: im.delay_days),
        "magnifications": padded(lambda im: im.magnification),
        "sn_image_x_arcsec": padded(lambda im: im.x),
        "sn_image_y_arcsec": padded(lambda im: im.y),
        "sn_peak_magnitude_bands": np.stack(
            [p.supernova.peak_magnitudes if p.supernova else np.full(n_bands, nan) for p in params]
        ),
        "seeing_fwhm_arcsec": np.stack([p.seeing_fwhm_arcsec for p in params]),
        "sky_mag_arcsec2": np.stack([p.sky_mag_arcsec2 for p in params]),
    }


def render_block(
    renderer: TransientRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Coadds [b, bands, H, W], truth and extra inputs for objects start..stop-1."""
    config = renderer.config
    inst = config.instrument
    params = [
        draw_transient_params(config, int(label), image_rng(seed, index, PARAMS_STREAM))
        for index, label in zip(range(start, stop), labels, strict=True)
    ]
    with one_cpu_thread(renderer.device):
        models = renderer.render(params)
    epochs = np.empty_like(models)
    for j, (index, p) in enumerate(zip(range(start, stop), params, strict=True)):
        if inst.noise == "ccd":
            sigma, exposure = noise_levels(config, p.sky_mag_arcsec2)
            noisy = add_ccd_noise(
                models[j].astype(np.float64),
                image_rng(seed, index, NOISE_STREAM),
                sigma[:, :, None, None],
                exposure[None, :, None, None],
            )
            epochs[j] = noisy.astype(np.float32)
        else:
            epochs[j] = models[j]
    inputs = {
        "light_curves": aperture_photometry(epochs.astype(np.float64), inst.aperture_radius_px)
    }
    if inst.store_epoch_images:
        inputs["epoch_images"] = epochs
    coadds = epochs.astype(np.float64).mean(axis=1).astype(np.float32)
    return coadds, _truth(params, len(inst.bands)), inputs


def dataset_manifest(config: TransientsConfig, seed: int, n: int, split: Sequence[float]) -> dict:
    """What the file records about how it was made (config, layout, bands, epochs, codes)."""
    inst = config.instrument
    return {
        "kind": "lensed_transients",
        "preset": config.preset,
        "config": config.to_dict(),
        "seed": seed,
        "n": n,
        "split_fractions": list(split),
        "split_names": list(SPLIT_NAMES),
        "band_names": list(inst.band_names),
        "magnitude_zero_points": [b.magnitude_zero_point for b in inst.bands],
        "pixel_scale_arcsec": inst.pixel_scale_arcsec,
        "epoch_times_days": inst.epoch_times_days(),
        "object_kinds": {str(code): name for code, name in enumerate(OBJECT_KINDS)},
        "image_units": "e-/s per pixel, mean of the epoch images (not min-max scaled)",
        "light_curve_units": (
            f"e-/s within {inst.aperture_radius_px} px of the centre, background-subtracted "
            "(not min-max scaled)"
        ),
        "darklens_version": __version__,
    }


def simulate_transients(
    config: TransientsConfig,
    out: str | Path,
    n: int,
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 64,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate ``n`` objects (classes balanced to within one) into ``out``, atomically;
    ``progress`` is called with the number of objects finished per block."""
    blocks = plan_blocks(n, batch_size, workers, device)
    split_codes, labels = transient_layout(n, split, seed)
    renderer = TransientRenderer(config, device=device)
    inst = config.instrument
    shape = (len(inst.bands), inst.num_pix, inst.num_pix)
    extra = {"light_curves": (inst.n_epochs, len(inst.bands))}
    if inst.store_epoch_images:
        extra["epoch_images"] = (inst.n_epochs, *shape)
    return write_rendered_dataset(
        out,
        renderer,
        render_block,
        seed=seed,
        blocks=blocks,
        workers=workers,
        labels=labels,
        split_codes=split_codes,
        image_shape=shape,
        manifest=dataset_manifest(config, seed, n, split),
        truth_columns=truth_columns(config),
        extra_inputs=extra,
        overwrite=overwrite,
        progress=progress,
    )
