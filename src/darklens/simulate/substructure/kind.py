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

from darklens import __version__
from darklens.citations import dataset_citations
from darklens.data.h5 import SPLIT_NAMES
from darklens.simulate.blocks import one_cpu_thread
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    CounterRandom,
    counter_keys,
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
from darklens.simulate.substructure.noise import apply_noise
from darklens.simulate.substructure.presets import PRESETS
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import draw_group_params

DEFAULT_N_PER_CLASS = 1000
# Dataset-level stream of the split permutation (apart from every image's streams).
_SPLIT_KEY = 0


def truth_columns(config: SubstructureConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    k = config.cdm.n_subhalos
    return {
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
    intra-op thread on a CPU)."""
    config = renderer.config
    labels = np.asarray(labels)
    indices = np.arange(start, stop)
    n, k = len(indices), config.cdm.n_subhalos
    images = np.empty((n, 1, renderer.num_pix, renderer.num_pix), dtype=np.float32)
    clean = np.empty_like(images) if config.store_clean else None
    truth = {
        name: np.full((n, *shape), np.nan if dtype == "float64" else 0, dtype=dtype)
        for name, (shape, dtype) in truth_columns(config).items()
    }
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
            _group_truth(truth, rows, group, k)
    return Block(images, truth, clean=clean)


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
    config: SubstructureConfig,
    renderer: SubstructureRenderer,
    seed: int,
    n_per_class: int,
    split: Sequence[float],
) -> dict[str, Any]:
    """What the file records about how it was made."""
    return {
        "kind": "substructure",
        "preset": config.preset,
        "config": config.to_dict(),
        "seed": seed,
        "n_per_class": n_per_class,
        "split_fractions": list(split),
        "split_names": list(SPLIT_NAMES),
        "main_einstein_radius_arcsec": renderer.main_einstein_radius_arcsec,
        "deflection_scale": renderer.deflection_scale,
        "effective_einstein_radius_arcsec": renderer.effective_einstein_radius_arcsec,
        "source_amplitude": renderer.amplitude,
        "image_units": "counts" if config.instrument.noise == "counts" else "e-/s per pixel",
        "pixel_scale_arcsec": config.instrument.pixel_scale_arcsec,
        "band_names": [config.instrument.name],
        "darklens_version": __version__,
        "citations": dataset_citations(config.preset),
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
    manifest=lambda config, renderer, seed, size, split: dataset_manifest(
        config, renderer, seed, count(config, size) // len(config.class_names), split
    ),
    summary=summary,
)
