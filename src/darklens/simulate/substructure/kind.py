"""The substructure simulator kind: layout, block rendering, truth and manifest.

Image i has label ``i % n_classes`` and is drawn from its own random streams keyed by (seed, i),
so its bytes are the same whatever the batch size, the number of workers or the order in which
blocks finish (see :mod:`darklens.simulate.blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from darklens import __version__
from darklens.data.h5 import SPLIT_NAMES
from darklens.simulate.blocks import one_cpu_thread
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
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.noise import apply_noise
from darklens.simulate.substructure.presets import PRESETS
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import draw_image_params
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
    """Images and truth for indices start..stop-1 with their labels (one intra-op CPU thread)."""
    config = renderer.config
    params = [
        draw_image_params(config, int(label), image_rng(seed, index, PARAMS_STREAM))
        for index, label in zip(range(start, stop), labels, strict=True)
    ]
    with one_cpu_thread(renderer.device):
        models = renderer.render(params)
    side = config.instrument.num_pix  # views may render on their own grid (resized with noise)
    images = np.empty((len(params), 1, side, side), dtype=np.float32)
    for j, (index, p) in enumerate(zip(range(start, stop), params, strict=True)):
        images[j, 0] = apply_noise(
            models[j], config, image_rng(seed, index, NOISE_STREAM), p.exposure_s, p.view
        )
    k = config.cdm.n_subhalos
    truth = {
        "source_x_arcsec": np.array([p.source_x for p in params]),
        "source_y_arcsec": np.array([p.source_y for p in params]),
        "exposure_s": np.array([p.exposure_s for p in params]),
        "axion_mass_ev": np.array([p.axion_mass_ev for p in params]),
        "vortex_angle_rad": np.array([p.vortex_angle_rad for p in params]),
        "vortex_half_length_arcsec": np.array([p.vortex_half_length_arcsec for p in params]),
        "n_subhalos": np.array([len(p.subhalo_mass) for p in params], dtype=np.int32),
        "subhalo_mass_msun": np.full((len(params), k), np.nan),
        "subhalo_x_arcsec": np.full((len(params), k), np.nan),
        "subhalo_y_arcsec": np.full((len(params), k), np.nan),
    }
    if config.per_image_views:
        truth.update(view_truth([p.view for p in params]))
    for j, p in enumerate(params):
        m = len(p.subhalo_mass)
        if m:
            truth["subhalo_mass_msun"][j, :m] = p.subhalo_mass
            truth["subhalo_x_arcsec"][j, :m] = p.point_x
            truth["subhalo_y_arcsec"][j, :m] = p.point_y
    return Block(images, truth)


def dataset_manifest(
    config: SubstructureConfig,
    renderer: SubstructureRenderer,
    seed: int,
    n_per_class: int,
    split: Sequence[float],
) -> dict[str, Any]:
    """What the file records about how it was made (with the image bank's identity)."""
    bank = {}
    if uses_bank(config):
        images = image_bank(config)
        bank = {"source_bank": {"name": images.name, "n_images": len(images),
                                "sha256": images.sha256}}  # fmt: skip
    return bank | {
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
        "darklens_version": __version__,
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
