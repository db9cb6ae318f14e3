"""Shared fixtures: tiny, seeded darklens datasets whose classes a small CNN learns in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from darklens.data.h5 import DatasetWriter

CLASS_NAMES = ("no_sub", "cdm", "axion")


def _toy_image(kind: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """Class 0: a compact blob; class 1: a ring; class 2: a ring with two bright clumps.

    Positions, radii and brightness jitter from image to image, plus Gaussian noise.
    """
    centre = (size - 1) / 2 + rng.uniform(-1.5, 1.5, size=2)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    radius = np.hypot(xx - centre[0], yy - centre[1])
    amplitude = rng.uniform(0.8, 1.2)
    if kind == 0:
        image = np.exp(-0.5 * (radius / (size * 0.08)) ** 2)
    else:
        ring_radius = size * rng.uniform(0.25, 0.3)
        image = np.exp(-0.5 * ((radius - ring_radius) / (size * 0.04)) ** 2)
        if kind == 2:
            for angle in rng.uniform(0, 2 * np.pi, size=2):
                cx = centre[0] + ring_radius * np.cos(angle)
                cy = centre[1] + ring_radius * np.sin(angle)
                image += 1.5 * np.exp(-0.5 * (np.hypot(xx - cx, yy - cy) / (size * 0.04)) ** 2)
    return amplitude * image + rng.normal(0.0, 0.1, size=(size, size))


def make_toy_dataset(
    path: Path,
    per_class: int = 30,
    size: int = 32,
    seed: int = 0,
    split_fractions: tuple[float, float] = (0.6, 0.2),
) -> Path:
    """Write a 3-class dataset of 1 x size x size images; splits per class train/val/test."""
    rng = np.random.default_rng(seed)
    n_classes = len(CLASS_NAMES)
    n = per_class * n_classes
    labels = np.repeat(np.arange(n_classes), per_class)
    images = np.stack([_toy_image(k, rng, size) for k in labels])[:, None].astype(np.float32)
    n_train = int(round(split_fractions[0] * per_class))
    n_val = int(round(split_fractions[1] * per_class))
    split_one_class = np.array([0] * n_train + [1] * n_val + [2] * (per_class - n_train - n_val))
    split = np.tile(split_one_class, n_classes).astype(np.uint8)
    order = rng.permutation(n)
    with DatasetWriter(path, n, (1, size, size), CLASS_NAMES, manifest={"toy": True}) as writer:
        writer.write(0, images[order], labels[order], split[order])
    return path


REGRESSION_NOISE = 0.2  # σ of the Gaussian noise on the regression toy images


def make_regression_dataset(path: Path, n: int = 90, size: int = 24, seed: int = 0) -> Path:
    """Rings whose radius (truth ``ring_radius_px``; brightness ``amplitude``) is the thing to
    learn, with Gaussian noise
    of σ :data:`REGRESSION_NOISE` and the noiseless rings in ``/targets/clean``. Class 2 images
    carry ``axion_mass_ev`` = 10^(radius/3 − 25) (NaN on the others); class 1 images carry two
    ``subhalo_mass_msun`` slots of a third (NaN), summing to 10^radius."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    radius = rng.uniform(3.0, 0.4 * size, n)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    clean = np.exp(-0.5 * ((np.hypot(xx, yy)[None] - radius[:, None, None]) / 1.2) ** 2)
    amplitude = rng.uniform(0.8, 1.2, n)
    clean = (amplitude[:, None, None] * clean)[:, None].astype(np.float32)
    images = clean + rng.normal(0, REGRESSION_NOISE, clean.shape).astype(np.float32)
    axion = np.where(labels == 2, 10.0 ** (radius / 3 - 25), np.nan)
    subhalos = np.full((n, 3), np.nan)
    subhalos[labels == 1, :2] = 0.5 * 10.0 ** radius[labels == 1, None]
    split = np.tile([0, 0, 0, 1, 2], n // 5 + 1)[:n].astype(np.uint8)
    columns = {
        "ring_radius_px": ((), "float64"),
        "amplitude": ((), "float64"),
        "axion_mass_ev": ((), "float64"),
        "subhalo_mass_msun": ((3,), "float64"),
    }
    with DatasetWriter(
        path, n, (1, size, size), CLASS_NAMES, {"toy": True}, columns, store_clean=True
    ) as writer:
        truth = {"ring_radius_px": radius, "amplitude": amplitude, "axion_mass_ev": axion}
        truth["subhalo_mass_msun"] = subhalos
        writer.write(0, images, labels, split, truth, clean=clean)
    return path


@pytest.fixture(scope="session")
def regression_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 noisy 1x24x24 rings with radius, axion-mass and subhalo truth and clean images."""
    return make_regression_dataset(tmp_path_factory.mktemp("data") / "rings.h5")


def _train_once(tmp_path_factory: pytest.TempPathFactory, data: Path, name: str, **settings):
    from darklens.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("runs") / name
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(TrainConfig(batch_size=8, seed=0, **settings), data, run_dir)
    finally:
        torch.set_num_threads(previous)
    return run_dir


@pytest.fixture(scope="session")
def regression_run(regression_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deeplense_cnn Gaussian-NLL regression of the ring radius (6 epochs)."""
    return _train_once(
        tmp_path_factory, regression_h5, "radius", model="deeplense_cnn", task="regress",
        targets=("ring_radius_px",), epochs=6, lr=3e-3, grad_clip_norm=1.0,
    )  # fmt: skip


@pytest.fixture(scope="session")
def denoise_run(regression_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small U-Net denoising the rings (3 epochs)."""
    return _train_once(
        tmp_path_factory, regression_h5, "unet", model="unet", model_kwargs={"size": "small"},
        task="denoise", epochs=3, lr=3e-3,
    )  # fmt: skip


@pytest.fixture(scope="session")
def toy_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 30 images of 1x32x32 (18 train, 6 val, 6 test per class)."""
    return make_toy_dataset(tmp_path_factory.mktemp("data") / "toy.h5")


@pytest.fixture(scope="session")
def trained_run(toy_h5: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of a short deeplense_cnn training on :func:`toy_h5` (best/last checkpoints)."""
    from darklens.train import TrainConfig, train

    run_dir = tmp_path_factory.mktemp("runs") / "cnn"
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            TrainConfig(model="deeplense_cnn", epochs=2, batch_size=8, seed=0),
            toy_h5,
            run_dir,
        )
    finally:
        torch.set_num_threads(previous)
    return run_dir


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Keep tests to one CPU thread (the machine is shared) and restore the setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray instance for the session: 2 CPUs, loopback only (started on first use)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()
