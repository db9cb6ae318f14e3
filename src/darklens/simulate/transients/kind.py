"""The lensed-transient simulator kind: layout, block rendering, truth, extra inputs, manifest.

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

from collections.abc import Sequence

import numpy as np

from darklens.simulate.blocks import one_cpu_thread
from darklens.simulate.func.noise import add_ccd_noise
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    image_rng,
    layout_rng,
    stratified_split_codes,
)
from darklens.simulate.kinds import (
    Block,
    Layout,
    SimulatorKind,
    SizeRequest,
    refuse_options,
    requested,
)
from darklens.simulate.transients.config import (
    CLASS_NAMES,
    OBJECT_KINDS,
    TransientsConfig,
)
from darklens.simulate.transients.lensing import MAX_IMAGES
from darklens.simulate.transients.presets import TRANSIENT_PRESETS
from darklens.simulate.transients.render import TransientRenderer
from darklens.simulate.transients.sampling import TransientParams, draw_transient_params

DEFAULT_N = 1000
# Dataset-level stream of the split permutation (apart from every object's streams).
_SPLIT_KEY = 7


def transient_layout(n: int, split: Sequence[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(split code per object: 0 train, 1 val, 2 test; label per object, i mod 4)."""
    labels = np.arange(n, dtype=np.int64) % len(CLASS_NAMES)
    return stratified_split_codes(labels, split, layout_rng(seed, _SPLIT_KEY)), labels


def noise_levels(config: TransientsConfig, sky_mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background σ [T, bands] in e-/s per pixel for the epochs' sky, exposure [bands] in s),
    with lenstronomy's background formula (sky, read noise, exposure)."""
    inst = config.instrument
    sigma = np.stack(
        [
            band.background_sigma_e_per_s(inst.pixel_scale_arcsec, sky_mag[:, b])
            for b, band in enumerate(inst.bands)
        ],
        axis=-1,
    )
    return sigma, np.array([band.total_exposure_s for band in inst.bands])


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
) -> Block:
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
    return Block(coadds, _truth(params, len(inst.bands)), inputs)


def dataset_manifest(config: TransientsConfig, n: int) -> dict:
    """What the file records beyond the common fields: bands, epochs, object codes, units."""
    inst = config.instrument
    return {
        "n": n,
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
    }


def count(config: TransientsConfig, size: SizeRequest) -> int:
    """``n`` objects in total (default 1000), classes balanced to within one."""
    refuse_options(config.preset, "lensed-transient", size, ["--n"])
    return requested(size.n, DEFAULT_N, "--n")


def layout(
    config: TransientsConfig, size: SizeRequest, split: Sequence[float], seed: int
) -> Layout:
    codes, labels = transient_layout(count(config, size), split, seed)
    return Layout(labels, codes)


def image_shape(config: TransientsConfig) -> tuple[int, int, int]:
    inst = config.instrument
    return (len(inst.bands), inst.num_pix, inst.num_pix)


def extra_inputs(config: TransientsConfig) -> dict[str, tuple[int, ...]]:
    """Aperture light curves [T, bands], and the epoch images when the config stores them."""
    inst = config.instrument
    extra: dict[str, tuple[int, ...]] = {"light_curves": (inst.n_epochs, len(inst.bands))}
    if inst.store_epoch_images:
        extra["epoch_images"] = (inst.n_epochs, *image_shape(config))
    return extra


def summary(config: TransientsConfig) -> str:
    inst = config.instrument
    grid = f'{inst.num_pix}x{inst.num_pix} px at {inst.pixel_scale_arcsec}" ({inst.name})'
    return (
        f"{config.preset:18s} {grid}, bands {','.join(inst.band_names)}, {inst.n_epochs} "
        f"epochs every {inst.cadence_days:g} d, noise: {inst.noise} (lensed transients)"
    )


KIND = SimulatorKind(
    name="lensed_transients",
    config_type=TransientsConfig,
    presets=TRANSIENT_PRESETS,
    count=count,
    layout=layout,
    renderer=lambda config, device: TransientRenderer(config, device=device),
    render_block=render_block,
    image_shape=image_shape,
    truth_columns=truth_columns,
    extra_inputs=extra_inputs,
    manifest=lambda config, renderer, size: dataset_manifest(config, count(config, size)),
    summary=summary,
    default_split=(0.7, 0.15, 0.15),
    default_batch_size=64,
)
