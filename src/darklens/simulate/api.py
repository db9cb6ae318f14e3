"""One entry point for both simulators: find a preset, resolve its config, run the right engine.

Substructure presets (``model_i`` … ``model_iii``) live in ``simulate.presets.PRESETS``;
lens-finding presets (``lensfind_*``) in ``simulate.lensfind.presets.LENSFIND_PRESETS``;
lensed-transient presets (``transients_*``) in ``simulate.transients.presets.TRANSIENT_PRESETS``.
The kind of a preset decides which sizes apply: ``n_per_class`` for substructure datasets, ``n``
(total) and ``lens_fraction`` for lens-finding datasets, ``n`` (total, classes balanced) for
lensed-transient datasets.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from darklens.config import ConfigError, load_yaml
from darklens.guards import check_allocation, check_free_disk
from darklens.simulate.lensfind.config import LensFindConfig
from darklens.simulate.lensfind.engine import simulate_lensfind
from darklens.simulate.lensfind.presets import LENSFIND_PRESETS
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.engine import SimulationResult, simulate_dataset
from darklens.simulate.substructure.presets import PRESETS
from darklens.simulate.transients.config import TransientsConfig
from darklens.simulate.transients.engine import simulate_transients
from darklens.simulate.transients.presets import TRANSIENT_PRESETS

PresetConfig = SubstructureConfig | LensFindConfig | TransientsConfig
DEFAULT_N_PER_CLASS = 1000
DEFAULT_N = 1000
DEFAULT_LENS_FRACTION = (0.06, 0.06, 0.01)


def preset_names() -> list[str]:
    """Substructure presets, then lens-finding presets, then lensed-transient presets."""
    return PRESETS.names() + LENSFIND_PRESETS.names() + TRANSIENT_PRESETS.names()


def get_any_preset(name: str) -> PresetConfig:
    """The preset config of either kind, or KeyError naming the close matches and all presets."""
    if name in LENSFIND_PRESETS:
        return LENSFIND_PRESETS.get(name)
    if name in TRANSIENT_PRESETS:
        return TRANSIENT_PRESETS.get(name)
    if name in PRESETS:
        return PRESETS.get(name)
    known = preset_names()
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise KeyError(f"unknown preset {name!r}.{hint} Known: {', '.join(known)}")


def resolve_config(
    preset: str,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    deeplense_compat: bool | None = None,
) -> PresetConfig:
    """Preset, then the YAML file's fields merged over it, then dotted overrides, then the flag."""
    config = get_any_preset(preset)
    if not isinstance(config, SubstructureConfig) and deeplense_compat is not None:
        raise ConfigError(
            f"--deeplense-compat applies to the substructure presets "
            f"({', '.join(PRESETS.names())}), not to {preset}"
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
    """One line describing a preset (grid, instrument, PSF, noise)."""
    config = get_any_preset(name)
    inst = config.instrument
    grid = f'{inst.num_pix}x{inst.num_pix} px at {inst.pixel_scale_arcsec}" ({inst.name})'
    if isinstance(config, TransientsConfig):
        bands = ",".join(inst.band_names)
        return (
            f"{name:18s} {grid}, bands {bands}, {inst.n_epochs} epochs every "
            f"{inst.cadence_days:g} d, noise: {inst.noise} (lensed transients)"
        )
    if isinstance(config, LensFindConfig):
        seeing = [b.seeing_fwhm_range_arcsec for b in inst.bands]
        low, high = min(s[0] for s in seeing), max(s[1] for s in seeing)
        bands = ",".join(inst.band_names)
        return (
            f'{name:18s} {grid}, bands {bands}, seeing {low}-{high}", noise: {inst.noise}'
            " (lens finding)"
        )
    return (
        f'{name:18s} {grid}, PSF FWHM {inst.psf_fwhm_arcsec}", noise: {inst.noise} (substructure)'
    )


def image_count(
    config: PresetConfig,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
) -> int:
    """Total images a run makes; ConfigError when a size option does not fit the preset kind."""
    if isinstance(config, TransientsConfig):
        if n_per_class is not None or lens_fraction is not None:
            raise ConfigError(
                f"{config.preset} is a lensed-transient preset: give the total with --n (the "
                "four classes are balanced), not --n-per-class or --lens-fraction"
            )
        return DEFAULT_N if n is None else n
    if isinstance(config, LensFindConfig):
        if n_per_class is not None:
            raise ConfigError(
                f"{config.preset} is a lens-finding preset: give the total with --n (and "
                "--lens-fraction), not --n-per-class"
            )
        return DEFAULT_N if n is None else n
    if n is not None or lens_fraction is not None:
        raise ConfigError(
            f"--n and --lens-fraction apply to lens-finding presets "
            f"({', '.join(LENSFIND_PRESETS.names())}); for {config.preset} use --n-per-class"
        )
    per_class = DEFAULT_N_PER_CLASS if n_per_class is None else n_per_class
    return per_class * len(config.class_names)


TRUTH_BYTES_PER_IMAGE = 256  # labels, split code and truth columns, generously


def estimate_output_bytes(config: PresetConfig, total: int) -> int:
    """Bytes the dataset file of ``total`` images will take (float32 images, extra inputs and
    per-image truth; HDF5's own overhead is small)."""
    inst = config.instrument
    bands = 1 if isinstance(config, SubstructureConfig) else len(inst.bands)
    per_image = bands * inst.num_pix**2 * 4 + TRUTH_BYTES_PER_IMAGE
    if isinstance(config, TransientsConfig):
        per_image += inst.n_epochs * bands * 4
        if inst.store_epoch_images:
            per_image += inst.n_epochs * bands * inst.num_pix**2 * 4
    return total * per_image


def check_simulation_fits(config: PresetConfig, total: int, out: str | Path) -> int:
    """Refuse a run whose file cannot fit on the disk of ``out`` or whose per-image tables
    (labels, split codes, truth) cannot fit in memory, before anything is made; returns the
    estimated file size in bytes."""
    check_allocation(total * TRUTH_BYTES_PER_IMAGE, f"the tables of {total:,} images", out)
    size = estimate_output_bytes(config, total)
    check_free_disk(out, size, f"a dataset of {total:,} images")
    return size


def simulate(
    config: PresetConfig,
    out: str | Path,
    n: int | None = None,
    n_per_class: int | None = None,
    lens_fraction: Sequence[float] | None = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    workers: int = 1,
    batch_size: int = 256,
    device: str = "cpu",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Run the engine that fits the config (sizes checked by :func:`image_count`)."""
    total = image_count(config, n, n_per_class, lens_fraction)
    check_simulation_fits(config, total, out)
    common = dict(
        split=split,
        seed=seed,
        workers=workers,
        batch_size=batch_size,
        device=device,
        overwrite=overwrite,
        progress=progress,
    )
    if isinstance(config, TransientsConfig):
        return simulate_transients(config, out, total, **common)
    if isinstance(config, LensFindConfig):
        fractions = DEFAULT_LENS_FRACTION if lens_fraction is None else lens_fraction
        return simulate_lensfind(config, out, total, fractions, **common)
    return simulate_dataset(config, out, total // len(config.class_names), **common)
