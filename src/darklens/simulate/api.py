"""One entry point for every simulator kind: find a preset, resolve its config, simulate a
dataset into a file or into memory.

Presets of all kinds (:mod:`darklens.simulate.kinds`) share one namespace. Each kind decides which
size options it takes: ``n_per_class`` for substructure datasets, ``n`` (total) and
``lens_fraction`` for lens-finding datasets, ``n`` (classes balanced) for lensed transients.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from darklens.config import ConfigError, load_yaml
from darklens.data.memory import InMemoryDataset
from darklens.guards import check_allocation, check_free_disk
from darklens.simulate.blocks import (
    SimulationResult,
    plan_blocks,
    render_dataset_in_memory,
    write_rendered_dataset,
)
from darklens.simulate.kinds import SizeRequest, get_any_preset, kind_of, preset_names

__all__ = [
    "get_any_preset",
    "image_count",
    "preset_names",
    "preset_summary",
    "resolve_config",
    "simulate",
]


def resolve_config(
    preset: str,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    deeplense_compat: bool | None = None,
) -> Any:
    """Preset, then the YAML file's fields merged over it, then dotted overrides, then the flag."""
    config = get_any_preset(preset)
    if deeplense_compat is not None and not hasattr(config, "deeplense_compat"):
        compat = [n for n in preset_names() if hasattr(get_any_preset(n), "deeplense_compat")]
        raise ConfigError(
            f"--deeplense-compat applies to the substructure presets ({', '.join(compat)}), "
            f"not to {preset}"
        )
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        data = load_yaml(path.read_text(), path) or {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a YAML mapping of settings")
        config = config.merged(data)
    if overrides:
        config = config.override(overrides)
    if deeplense_compat is not None:
        config = config.override({"deeplense_compat": deeplense_compat})
    return config


def preset_summary(name: str) -> str:
    """One line describing a preset (grid, instrument, PSF, noise, kind)."""
    config = get_any_preset(name)
    return kind_of(config).summary(config)


def image_count(
    config: Any,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
) -> int:
    """Total images a run makes; ConfigError when a size option does not fit the preset kind."""
    fractions = None if lens_fraction is None else tuple(lens_fraction)
    return kind_of(config).count(config, SizeRequest(n, n_per_class, fractions))


TRUTH_BYTES_PER_IMAGE = 256  # labels, split code and truth columns, generously


def estimate_output_bytes(config: Any, total: int) -> int:
    """Bytes the dataset file of ``total`` images will take (float32 images, extra inputs and
    per-image truth; HDF5's own overhead is small)."""
    kind = kind_of(config)
    values = math.prod(kind.image_shape(config))
    values += sum(math.prod(shape) for shape in kind.extra_inputs(config).values())
    return total * (4 * values + TRUTH_BYTES_PER_IMAGE)


def check_simulation_fits(config: Any, total: int, out: str | Path | None) -> int:
    """Refuse a run whose file cannot fit on the disk of ``out`` or whose per-image tables
    (labels, split codes, truth) cannot fit in memory, before anything is made; returns the
    estimated file size in bytes. Without ``out`` (in memory) the whole dataset must fit in the
    free memory."""
    if out is None:
        size = estimate_output_bytes(config, total)
        what = f"an in-memory dataset of {total:,} images"
        check_allocation(size, what, "darklens.simulate", limit=sys.maxsize)
        return size
    check_allocation(total * TRUTH_BYTES_PER_IMAGE, f"the tables of {total:,} images", out)
    size = estimate_output_bytes(config, total)
    check_free_disk(out, size, f"a dataset of {total:,} images")
    return size


@overload
def simulate(
    config: Any,
    out: None = None,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
    split: Sequence[float] | None = None,
    seed: int = 0,
    workers: int = 1,
    batch_size: int | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> InMemoryDataset: ...


@overload
def simulate(
    config: Any,
    out: str | Path,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
    split: Sequence[float] | None = None,
    seed: int = 0,
    workers: int = 1,
    batch_size: int | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> SimulationResult: ...


def simulate(
    config: Any,
    out: str | Path | None = None,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
    split: Sequence[float] | None = None,
    seed: int = 0,
    workers: int = 1,
    batch_size: int | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> SimulationResult | InMemoryDataset:
    """Simulate a dataset of a preset (by name) or a config of any kind, into memory or a file.

    With ``out`` the dataset is written there atomically and a :class:`SimulationResult` (path,
    image count, seconds) comes back; without, the same arrays come back as an
    :class:`~darklens.data.memory.InMemoryDataset` (images, labels, split codes, truth, extra
    inputs, manifest), and no file is written. ``overrides`` are dotted settings applied to the
    config (``{"instrument.num_pix": 32}``). Size options depend on the kind: ``n_per_class``
    for substructure presets, ``n`` and ``lens_fraction`` (per split) for lens finding, ``n``
    for lensed transients. ``split`` and ``batch_size`` default to the kind's; ``progress`` is
    called with the number of images finished after each block.

    Image i depends only on (config, seed, i): the same bytes for any batch size or worker
    count, in memory or in a file. A run that cannot fit on the disk (or, in memory, in the free
    memory) is refused up front.

    Examples:
        >>> import darklens
        >>> tiny = {"instrument.num_pix": 16}
        >>> ds = darklens.simulate("model_ii", n_per_class=4, seed=0, overrides=tiny)
        >>> ds
        InMemoryDataset(12 images of 1x16x16; classes no_sub, cdm, axion; train 9, val 0, test 3)
        >>> ds.manifest["preset"], ds.manifest["seed"], ds.images.dtype
        ('model_ii', 0, dtype('float32'))
        >>> again = darklens.simulate("model_ii", n_per_class=4, seed=0, overrides=tiny)
        >>> bool((again.images == ds.images).all())
        True
    """
    if isinstance(config, str):
        config = get_any_preset(config)
    if overrides:
        config = config.override(overrides)
    kind = kind_of(config)
    fractions = None if lens_fraction is None else tuple(float(f) for f in lens_fraction)
    size = SizeRequest(n, n_per_class, fractions)  # type: ignore[arg-type]
    split = kind.default_split if split is None else tuple(split)
    batch = kind.default_batch_size if batch_size is None else batch_size
    total = kind.count(config, size)
    check_simulation_fits(config, total, out)
    blocks = plan_blocks(total, batch, workers, device, draws_in_workers=bool(kind.draw_block))
    layout = kind.layout(config, size, split, seed)
    renderer = kind.renderer(config, device)
    run = {
        "seed": seed,
        "blocks": blocks,
        "workers": workers,
        "layout": layout,
        "manifest": kind.dataset_manifest(config, renderer, seed, size, split),
        "progress": progress,
    }
    if out is None:
        return render_dataset_in_memory(kind, renderer, **run)
    return write_rendered_dataset(out, kind, renderer, overwrite=overwrite, **run)
