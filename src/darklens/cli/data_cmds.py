"""Dataset verbs: simulate, presets, info, show, check."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from darklens.cli import app
from darklens.cli._common import user_errors
from darklens.cli.progress import counting_bar
from darklens.config import ConfigError, parse_assignments

out_console = Console()


def parse_fractions(text: str, option: str = "--split") -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"{option} expects three numbers like 0.8,0.1,0.1, got {text!r}"
        ) from None
    if len(values) != 3:
        raise ConfigError(f"{option} expects three numbers (train,val,test), got {text!r}")
    return values  # type: ignore[return-value]


@app.command()
@user_errors
def simulate(
    out: Path = typer.Option(..., "--out", "-o", help="Output HDF5 file."),
    preset: str = typer.Option(
        "model_ii",
        help="Substructure: model_i, model_ii, model_iii. Lens finding: lensfind_space, "
        "lensfind_ground, lensfind_deeplense. Lensed transients: transients_des_deep, "
        "transients_desi_dot, transients_lsst_wide (see `darklens presets`).",
    ),
    n_per_class: int | None = typer.Option(
        None, help="Images per class (substructure presets; default 1000)."
    ),
    n: int | None = typer.Option(
        None, "--n", help="Total images (lens-finding and transient presets; default 1000)."
    ),
    lens_fraction: str | None = typer.Option(
        None,
        help="Lens fraction in train,val,test (lens-finding presets; default 0.06,0.06,0.01).",
    ),
    split: str = typer.Option("0.8,0.1,0.1", help="Train,val,test fractions."),
    seed: int = typer.Option(0, help="Dataset seed: image i depends only on (preset, seed, i)."),
    workers: int = typer.Option(1, help="Worker processes (CPU)."),
    batch_size: int = typer.Option(256, help="Images rendered per batch."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    deeplense_compat: bool = typer.Option(
        False,
        "--deeplense-compat",
        help="Reproduce DeepLenseSim's quirks (luminosity distances; Model II without noise).",
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML file of settings to override."),
    set_: list[str] = typer.Option([], "--set", help="Override one setting: key.path=value."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Simulate a dataset into one HDF5 file: substructure (no_sub / cdm / axion), lens
    finding (non_lens / lens) or lensed transients (no_lens / galaxy_lens / lensed_sn_ia /
    lensed_sn_cc), depending on the preset."""
    from darklens.guards import human_bytes
    from darklens.simulate.api import check_simulation_fits, image_count, resolve_config
    from darklens.simulate.api import simulate as run_simulation

    cfg = resolve_config(
        preset, config, parse_assignments(set_), deeplense_compat if deeplense_compat else None
    )
    fractions = parse_fractions(split)
    lens_fractions = None
    if lens_fraction is not None:
        lens_fractions = parse_fractions(lens_fraction, "--lens-fraction")
    total = image_count(cfg, n, n_per_class, lens_fractions)
    size = check_simulation_fits(cfg, total, out)
    if not quiet:
        Console(stderr=True).print(
            f"simulating {total:,} images into {out} (about {human_bytes(size)})",
            highlight=False,
            markup=False,
        )
    with counting_bar(f"simulate {cfg.preset}", total, enabled=not quiet) as advance:
        result = run_simulation(
            cfg,
            out,
            n=n,
            n_per_class=n_per_class,
            lens_fraction=lens_fractions,
            split=fractions,
            seed=seed,
            workers=workers,
            batch_size=batch_size,
            device=device,
            overwrite=overwrite,
            progress=advance,
        )
    out_console.print(
        f"wrote {result.n_images:,} images to [bold]{escape(str(result.path))}[/] in "
        f"{result.seconds:.1f} s "
        f"({result.images_per_second:,.0f} images/s)"
    )
    warn_empty_classes(result.path)


def warn_empty_classes(path: Path) -> None:
    """Print a warning for each split of a dataset that lacks some class."""
    from darklens.data.h5 import LensDataset, empty_class_warnings

    with LensDataset(path) as ds:
        lines = empty_class_warnings(ds.labels, ds.split_codes, ds.class_names, ds.split_names)
    for line in lines:
        Console(stderr=True).print(f"[yellow]warning:[/] {escape(line)}", highlight=False)


@app.command()
@user_errors
def check(
    path: Path = typer.Argument(..., help="A dataset (.h5), .npy file or checkpoint."),
) -> None:
    """Check a file and report every problem found (exit status 2 if there is any).

    Datasets: layout, counts, label range and type, split codes, truth and input columns,
    NaN or infinite pixels; warnings for splits without some class. ``.npy`` files: readable
    without running their pickle. Checkpoints (run folder or ``.json``): complete and matching
    their weights.
    """
    problems, warnings = _check_problems(path)
    for line in warnings:
        out_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    for line in problems:
        out_console.print(f"[bold red]problem:[/] {escape(line)}", highlight=False)
    if problems:
        raise typer.Exit(code=2)
    out_console.print(f"{path}: no problems found", highlight=False, markup=False)


def _check_problems(path: Path) -> tuple[list[str], list[str]]:
    if not path.exists():
        raise FileNotFoundError(f"no file or folder at {path}")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        from darklens.data.h5 import check_dataset_file

        found = check_dataset_file(path)
        return list(found.problems), list(found.warnings)
    if suffix == ".npy":
        from darklens.data.safe_pickle import NpyReadError, load_npy_safely

        try:
            load_npy_safely(path)
        except NpyReadError as err:
            return [err.reason], []
        return [], []
    if path.is_dir() or suffix in (".json", ".safetensors"):
        from darklens.runs import load_checkpoint

        try:
            load_checkpoint(path)
        except (ValueError, KeyError, OSError) as err:
            return [str(err)], []
        return [], []
    raise ValueError(
        f"cannot check {path}: expected a dataset (.h5), a .npy file, a run folder or a "
        "checkpoint (.json)"
    )


@app.command()
@user_errors
def presets(name: str | None = typer.Argument(None, help="Print this preset as YAML.")) -> None:
    """List simulation presets, or print one as YAML (a starting point for --config)."""
    from darklens.simulate.api import get_any_preset, preset_names, preset_summary

    if name is None:
        for preset in preset_names():
            out_console.print(preset_summary(preset), highlight=False)
        return
    out_console.print(get_any_preset(name).to_yaml(), highlight=False)


@app.command()
@user_errors
def info(path: Path = typer.Argument(..., help="A darklens dataset file.")) -> None:
    """Counts per class and split, image shape, and the manifest of a dataset file."""
    from darklens.data.h5 import LensDataset

    ds = LensDataset(path)
    counts = ds.counts()
    table = Table(title=f"{path} — {len(ds):,} images of shape {ds.image_shape}")
    table.add_column("class")
    for split_name in ds.split_names:
        table.add_column(split_name, justify="right")
    table.add_column("total", justify="right")
    for name in ds.class_names:
        row = [counts[s][name] for s in ds.split_names]
        table.add_row(name, *map(str, row), str(sum(row)))
    totals = [sum(counts[s].values()) for s in ds.split_names]
    table.add_row("[bold]all", *map(str, totals), str(sum(totals)))
    out_console.print(table)
    if ds.truth_columns:
        out_console.print("truth columns: " + ", ".join(ds.truth_columns))
    out_console.print("manifest:")
    out_console.print_json(json.dumps(ds.manifest))


@app.command()
@user_errors
def show(
    path: Path = typer.Argument(..., help="A darklens dataset file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output PNG."),
    per_class: int = typer.Option(6, help="Images per class."),
    split: str = typer.Option("all", help="train, val, test or all."),
    seed: int = typer.Option(0, help="Which random samples to show."),
) -> None:
    """Write a labelled sample gallery (one row per class) as a PNG."""
    from darklens.data.gallery import write_gallery

    written = write_gallery(path, out, per_class=per_class, split=split, seed=seed)
    out_console.print(f"wrote {written}", markup=False)
