"""The substructure simulator kind: layout, block rendering, truth and manifest.

Image i has label ``i % n_classes`` and is drawn from its own random streams keyed by (seed, i),
so its bytes are the same whatever the batch size, the number of workers or the order in which
blocks finish (see :mod:`darklens.simulate.blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from darklens.simulate.blocks import one_cpu_thread
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    CounterRandom,
    counter_keys,
    image_rng,
    keys_tensor,
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
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.noise import apply_noise, observed_view_image
from darklens.simulate.substructure.presets import PRESETS
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import (
    ParamGroup,
    draw_group_params,
    draw_image_params,
)
from darklens.simulate.substructure.views import (
    VIEW_TRUTH_COLUMNS,
    image_bank,
    uses_bank,
    view_truth,
)

DEFAULT_N_PER_CLASS = 1000
# Dataset-level stream of the split permutation (apart from every image's streams).
_SPLIT_KEY = 0


def truth_columns(config: SubstructureConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    k = config.cdm.n_subhalos
    views = VIEW_TRUTH_COLUMNS if config.per_image_views else {}
    return views | {
        "source_x_arcsec": ((), "float64"),
        "source_y_arcsec": ((), "float64"),
        "exposure_s": ((), "float64"),
        "axion_mass_ev": ((), "float64"),
        "vortex_angle_rad": ((), "float64"),
        "vortex_half_length_arcsec": ((), "float64"),
        "n_subhalos": ((), "int32"),
        "subhalo_mass_msun": ((k,), "float64"),
        "subhalo_x_arcsec": ((k,), "float64"),
        "subhalo_y_arcsec": ((k,), "float64"),
    }


def render_block(
    renderer: SubstructureRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> Block:
    """Images and truth for indices start..stop-1 with their labels: parameters drawn on the
    host for each label's images at once, rendering and noise on the renderer's device (one
    intra-op thread on a CPU). Configs with per-image views take the general path,
    :func:`render_views_block`."""
    config = renderer.config
    if config.per_image_views:
        return render_views_block(renderer, seed, start, stop, labels)
    labels = np.asarray(labels)
    indices = np.arange(start, stop)
    images = np.empty((len(indices), 1, renderer.num_pix, renderer.num_pix), dtype=np.float32)
    clean = np.empty_like(images) if config.store_clean else None
    truth = _empty_truth(config, len(indices))
    with one_cpu_thread(renderer.device):
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            group = draw_group_params(
                config, int(label), CounterRandom(seed, indices[rows], PARAMS_STREAM)
            )
            keys = keys_tensor(counter_keys(seed, indices[rows], NOISE_STREAM), renderer.device)
            exposure = torch.as_tensor(group.exposure_s, device=renderer.device)
            noiseless = renderer.render_group(group)
            observed = apply_noise(noiseless, config, keys, exposure)
            images[rows, 0] = observed.cpu().numpy()
            if clean is not None:
                clean[rows, 0] = noiseless.to(torch.float32).cpu().numpy()
            _group_truth(truth, rows, group, config.cdm.n_subhalos)
    return Block(images, truth, clean=clean)


def render_views_block(
    renderer: SubstructureRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> Block:
    """:func:`render_block` for configs with per-image views (real-galaxy sources, lens light,
    domain randomisation, Model IV): image by image parameters and views, each view rendered on
    its own grid and observed with its own noise (NumPy, from the image's noise stream), then
    resized to the dataset's grid."""
    config = renderer.config
    indices = range(start, stop)
    params = [
        draw_image_params(config, int(label), seed, index)
        for index, label in zip(indices, labels, strict=True)
    ]
    with one_cpu_thread(renderer.device):
        models = renderer.render(params)
    side = config.instrument.num_pix
    images = np.empty((len(params), 1, side, side), dtype=np.float32)
    for j, (index, p) in enumerate(zip(indices, params, strict=True)):
        rng = image_rng(seed, index, NOISE_STREAM)
        images[j, 0] = observed_view_image(models[j], p.view, rng, side)
    truth = _empty_truth(config, len(params))
    truth.update(view_truth([p.view for p in params]))
    labels = np.asarray(labels)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        group = ParamGroup.stack(int(label), [params[j] for j in rows])
        _group_truth(truth, rows, group, config.cdm.n_subhalos)
    return Block(images, truth)


def _empty_truth(config: SubstructureConfig, n: int) -> dict[str, np.ndarray]:
    return {
        name: np.full((n, *shape), np.nan if dtype == "float64" else 0, dtype=dtype)
        for name, (shape, dtype) in truth_columns(config).items()
    }


def _group_truth(truth: dict[str, np.ndarray], rows: np.ndarray, group, k: int) -> None:
    """Write one label group's truth into the block's columns (subhalo slots NaN past K)."""
    truth["source_x_arcsec"][rows] = group.source_x
    truth["source_y_arcsec"][rows] = group.source_y
    truth["exposure_s"][rows] = group.exposure_s
    truth["axion_mass_ev"][rows] = group.axion_mass_ev
    truth["vortex_angle_rad"][rows] = group.vortex_angle_rad
    truth["vortex_half_length_arcsec"][rows] = group.vortex_half_length_arcsec
    m = group.subhalo_mass.shape[1]
    truth["n_subhalos"][rows] = m
    if m:
        truth["subhalo_mass_msun"][rows, :m] = group.subhalo_mass
        truth["subhalo_x_arcsec"][rows, :m] = group.point_x
        truth["subhalo_y_arcsec"][rows, :m] = group.point_y


def dataset_manifest(
    config: SubstructureConfig, renderer: SubstructureRenderer, n_per_class: int
) -> dict[str, Any]:
    """What the file records beyond the common fields: the lens the renderer made of the config,
    units, the image bank's identity."""
    bank = {}
    if uses_bank(config):
        images = image_bank(config)
        bank = {"source_bank": {"name": images.name, "n_images": len(images),
                                "sha256": images.sha256}}  # fmt: skip
    return bank | {
        "n_per_class": n_per_class,
        "main_einstein_radius_arcsec": renderer.main_einstein_radius_arcsec,
        "deflection_scale": renderer.deflection_scale,
        "effective_einstein_radius_arcsec": renderer.effective_einstein_radius_arcsec,
        "source_amplitude": renderer.amplitude,
        "image_units": "counts" if config.instrument.noise == "counts" else "e-/s per pixel",
        "pixel_scale_arcsec": config.instrument.pixel_scale_arcsec,
        "band_names": [config.instrument.name],
    }


def count(config: SubstructureConfig, size: SizeRequest) -> int:
    """``n_per_class`` images of each class (default 1000)."""
    refuse_options(config.preset, "substructure", size, ["--n-per-class"])
    per_class = requested(size.n_per_class, DEFAULT_N_PER_CLASS, "--n-per-class")
    return per_class * len(config.class_names)


def layout(
    config: SubstructureConfig, size: SizeRequest, split: Sequence[float], seed: int
) -> Layout:
    """Label i = i mod classes; exact per-class split counts from one seeded permutation."""
    labels = np.arange(count(config, size)) % len(config.class_names)
    return Layout(labels, stratified_split_codes(labels, split, layout_rng(seed, _SPLIT_KEY)))


def summary(config: SubstructureConfig) -> str:
    inst = config.instrument
    grid = f'{inst.num_pix}x{inst.num_pix} px at {inst.pixel_scale_arcsec}" ({inst.name})'
    psf = f'PSF FWHM {inst.psf_fwhm_arcsec}"'
    return f"{config.preset:18s} {grid}, {psf}, noise: {inst.noise} (substructure)"


KIND = SimulatorKind(
    name="substructure",
    config_type=SubstructureConfig,
    presets=PRESETS,
    count=count,
    layout=layout,
    renderer=lambda config, device: SubstructureRenderer(config, device=device),
    render_block=render_block,
    image_shape=lambda config: (1, config.instrument.num_pix, config.instrument.num_pix),
    truth_columns=truth_columns,
    manifest=lambda config, renderer, size: dataset_manifest(
        config, renderer, count(config, size) // len(config.class_names)
    ),
    summary=summary,
)
