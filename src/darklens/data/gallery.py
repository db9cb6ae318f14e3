"""A labelled sample gallery of a dataset: one row per class, a few images each."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.data.h5 import LensDataset


def display_stretch(image: np.ndarray) -> np.ndarray:
    """Map an image [C, H, W] to [H, W] (first channel) or [H, W, 3] in 0..1, asinh-stretched."""
    data = image[:3] if image.shape[0] >= 3 else image[:1]
    data = data.astype(np.float64)
    low = np.percentile(data, 1)
    high = np.percentile(data, 99.8)
    scaled = np.clip((data - low) / (high - low if high > low else 1.0), 0.0, None)
    stretched = np.arcsinh(10.0 * scaled) / np.arcsinh(10.0)
    stretched = np.clip(stretched, 0.0, 1.0)
    return np.moveaxis(stretched, 0, -1) if stretched.shape[0] == 3 else stretched[0]


def _display(image: np.ndarray, ds: LensDataset) -> np.ndarray:
    """Multi-band cutouts as a Lupton colour composite (zero points from the manifest when the
    simulator recorded them); single-band images with an asinh stretch."""
    if image.shape[0] < 2:
        return display_stretch(image)
    from darklens.data.composite import colour_composite

    zero_points = ds.manifest.get("magnitude_zero_points")
    if zero_points is not None and len(zero_points) != image.shape[0]:
        zero_points = None
    return colour_composite(image, zero_points)


def _caption(ds: LensDataset, index: int, truth: dict[str, np.ndarray]) -> str:
    parts = [f"#{index}"]
    if "theta_e_arcsec" in truth and np.isfinite(truth["theta_e_arcsec"][index]):
        lens = "" if "is_lens" not in truth or truth["is_lens"][index] else " (no source)"
        parts.append(f"θE={truth['theta_e_arcsec'][index]:.2f}″{lens}")
    is_lens = "is_lens" in truth and bool(truth["is_lens"][index])
    if is_lens and "lensed_snr" in truth and np.isfinite(truth["lensed_snr"][index]):
        parts.append(f"S/N={truth['lensed_snr'][index]:.0f}")
    if "axion_mass_ev" in truth and np.isfinite(truth["axion_mass_ev"][index]):
        parts.append(f"m_a={truth['axion_mass_ev'][index]:.1e} eV")
    if "n_subhalos" in truth and truth["n_subhalos"][index] > 0:
        mass = truth.get("subhalo_mass_msun")
        total = np.nansum(mass[index]) if mass is not None else float("nan")
        parts.append(f"{truth['n_subhalos'][index]} subhalos, {total:.1e} Msun")
    return "\n".join(parts)


def write_gallery(
    dataset: str | Path | LensDataset,
    out: str | Path,
    per_class: int = 6,
    split: str = "all",
    seed: int = 0,
) -> Path:
    """Save a PNG grid (rows: classes; columns: random samples of that class) with captions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = dataset if isinstance(dataset, LensDataset) else LensDataset(dataset)
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    candidates = ds.split_indices(split)
    rng = np.random.default_rng(seed)
    wanted = (
        "axion_mass_ev",
        "n_subhalos",
        "subhalo_mass_msun",
        "theta_e_arcsec",
        "is_lens",
        "lensed_snr",
    )
    truth = {name: ds.truth(name) for name in wanted if name in ds.truth_columns}
    rows = []
    for label, name in enumerate(ds.class_names):
        members = candidates[ds.labels[candidates] == label]
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        rows.append((name, chosen))
    fig, axes = plt.subplots(
        len(rows), per_class, figsize=(2.1 * per_class, 2.4 * len(rows)), squeeze=False
    )
    for r, (name, chosen) in enumerate(rows):
        images = ds.images(chosen) if len(chosen) else []
        for c in range(per_class):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(chosen):
                ax.imshow(_display(images[c], ds), cmap="magma", origin="lower")
                ax.set_title(_caption(ds, int(chosen[c]), truth), fontsize=7)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(f"{name}\n(n={int(np.sum(ds.labels[candidates] == r))})", fontsize=10)
    preset = ds.manifest.get("preset", ds.manifest.get("source", ""))
    fig.suptitle(f"{Path(ds.path).name} — {preset} — split: {split}", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
