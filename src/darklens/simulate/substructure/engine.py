"""Simulate a whole substructure dataset into a darklens HDF5 file, in parallel and reproducibly.

Image i has label ``i % n_classes`` and is drawn from its own random streams keyed by (seed, i),
so its bytes are the same whatever the batch size, the number of workers or the order in which
blocks finish (see :mod:`darklens.simulate.blocks`).
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
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.noise import apply_noise
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import (
    NOISE_STREAM,
    PARAMS_STREAM,
    draw_image_params,
    image_rng,
)

_SPLIT_KEY = (0xFFFFFFFF, 0)


def split_assignment(
    n_per_class: int, n_classes: int, fractions: Sequence[float], seed: int
) -> np.ndarray:
    """Split code (0 train, 1 val, 2 test) per image, stratified: exact counts in every class."""
    fractions = tuple(float(f) for f in fractions)
    if (
        len(fractions) != 3
        or any(f < 0 for f in fractions)
        or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    n_train = round(fractions[0] * n_per_class)
    n_val = min(round(fractions[1] * n_per_class), n_per_class - n_train)
    codes_per_class = np.full(n_per_class, 2, dtype=np.uint8)
    codes_per_class[:n_train] = 0
    codes_per_class[n_train : n_train + n_val] = 1
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_SPLIT_KEY))
    split = np.empty(n_per_class * n_classes, dtype=np.uint8)
    for label in range(n_classes):
        split[label::n_classes] = rng.permutation(codes_per_class)
    return split


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
    renderer: SubstructureRenderer, seed: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Images, labels and truth for indices start..stop-1 (one intra-op thread on CPU)."""
    config = renderer.config
    n_classes = len(config.class_names)
    labels = np.arange(start, stop) % n_classes
    params = [
        draw_image_params(config, int(label), image_rng(seed, index, PARAMS_STREAM))
        for index, label in zip(range(start, stop), labels, strict=True)
    ]
    with one_cpu_thread(renderer.device):
        models = renderer.render(params)
    images = np.empty((len(params), 1, *models.shape[1:]), dtype=np.float32)
    for j, (index, p) in enumerate(zip(range(start, stop), params, strict=True)):
        images[j, 0] = apply_noise(
            models[j], config, image_rng(seed, index, NOISE_STREAM), p.exposure_s
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
    for j, p in enumerate(params):
        m = len(p.subhalo_mass)
        if m:
            truth["subhalo_mass_msun"][j, :m] = p.subhalo_mass
            truth["subhalo_x_arcsec"][j, :m] = p.point_x
            truth["subhalo_y_arcsec"][j, :m] = p.point_y
    return images, labels, truth


def _images_and_truth(
    renderer: SubstructureRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`render_block` as :func:`write_rendered_dataset` calls it (labels are i % n)."""
    images, _, truth = render_block(renderer, seed, start, stop)
    return images, truth


def simulate_dataset(
    config: SubstructureConfig,
    out: str | Path,
    n_per_class: int,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 256,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Simulate ``n_per_class`` images of each class into ``out`` (written atomically).

    ``progress`` is called with the number of images finished after each block.
    """
    plan_blocks(n_per_class, batch_size, workers, device, what="n_per_class")
    n_classes = len(config.class_names)
    n = n_per_class * n_classes
    blocks = plan_blocks(n, batch_size, workers, device)
    split_codes = split_assignment(n_per_class, n_classes, split, seed)
    renderer = SubstructureRenderer(config, device=device)
    manifest = {
        "kind": "substructure",
        "preset": config.preset,
        "config": config.to_dict(),
        "seed": seed,
        "n_per_class": n_per_class,
        "split_fractions": list(split),
        "split_names": list(SPLIT_NAMES),
        "main_einstein_radius_arcsec": renderer.main_einstein_radius_arcsec,
        "source_amplitude": renderer.amplitude,
        "image_units": "counts" if config.instrument.noise == "counts" else "e-/s per pixel",
        "darklens_version": __version__,
    }
    return write_rendered_dataset(
        out,
        renderer,
        _images_and_truth,
        seed=seed,
        blocks=blocks,
        workers=workers,
        labels=np.arange(n) % n_classes,
        split_codes=split_codes,
        image_shape=(1, config.instrument.num_pix, config.instrument.num_pix),
        manifest=manifest,
        truth_columns=truth_columns(config),
        overwrite=overwrite,
        progress=progress,
    )
