"""The lens-finding population against Collett (2015) forecasts: θ_E and redshift distributions,
source magnitudes, magnifications, and lenses per deg².

    python bench/bench_population.py --n 1000 --out docs/figures \\
        --lenspop-dir /path/to/LensPop   # optional: Collett's public forecast catalogues

For each preset (``lensfind_space`` vs Collett's Euclid forecast, ``lensfind_lsst`` vs his LSST
one, ``lensfind_ground`` without a forecast) it draws ``--n`` lenses exactly as a dataset does
(each image draws cross-section-weighted systems until one meets the preset's lens definition)
and reads their truth. Counts per deg²:

    N_lens = n_deflectors × n_sources × π ⟨θ_E²⟩ × f_def

with n_deflectors the Choi et al. (2007) function integrated over the preset's σ and comoving
volume per deg², n_sources the galaxy counts within the source magnitudes (per arcsec²),
⟨θ_E²⟩ the mean over deflectors (volume-weighted) and sources (Monte Carlo, θ_E = 0 when the
source is in front) and f_def = images / systems drawn, the share of cross-section-weighted
systems meeting the definition (truth ``lens_draws``).

Reference numbers (Collett 2015, ApJ 811, 20): 170,000 lenses in Euclid's 15,000 deg² (11.3 per
deg²) and 120,000 in LSST's 18,000 deg² (6.7 per deg², "LSSTc", optimal coadd). His public
catalogues (``lenses_Euclid.txt``, ``lenses_LSSTc.txt`` in github.com/tcollett/LensPop, each
0.1 of the sky) hold 15,999 and 13,126 lenses (3.9 and 3.2 per deg²); their quantiles are kept
below as :data:`COLLETT_QUANTILES`, and ``--lenspop-dir`` draws their full histograms too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from darklens.simulate.func.cosmology import comoving_distances_mpc
from darklens.simulate.func.population import (
    choi_vdf_per_mpc3_kms,
    comoving_volume_cdf,
    comoving_volume_mpc3,
    source_counts_per_arcsec2,
    source_magnitude,
    source_redshift,
    velocity_dispersion_cdf,
)
from darklens.simulate.lensfind import LensFindRenderer, get_lensfind_preset
from darklens.simulate.lensfind.kind import render_block

SQ_DEG_SKY = 41_252.96
# Collett (2015) abstract and Table 1: forecast lenses and survey areas (deg²).
COLLETT_COUNTS = {"lensfind_space": (170_000, 15_000), "lensfind_lsst": (120_000, 18_000)}
# Quantiles (5, 16, 50, 84, 95 %) of Collett's public catalogues (lenses_Euclid.txt,
# lenses_LSSTc.txt), computed from them; lenses per deg² = rows / 4125 (each is 0.1 sky).
COLLETT_QUANTILES = {
    "lensfind_space": {
        "catalogue": "lenses_Euclid.txt",
        "per_deg2": 3.88,
        "theta_e_arcsec": (0.25, 0.37, 0.65, 1.11, 1.51),
        "z_lens": (0.234, 0.355, 0.642, 1.078, 1.433),
        "z_source": (0.774, 1.103, 1.822, 2.788, 3.597),
        "source_magnitude": (23.54, 24.40, 25.53, 26.70, 27.45),
        "mu_total": (3.15, 3.54, 5.44, 11.13, 18.62),
    },
    "lensfind_lsst": {
        "catalogue": "lenses_LSSTc.txt",
        "per_deg2": 3.18,
        "theta_e_arcsec": (0.61, 0.82, 1.15, 1.61, 2.02),
        "z_lens": (0.17, 0.273, 0.493, 0.829, 1.121),
        "z_source": (0.833, 1.244, 2.064, 2.956, 3.689),
        "source_magnitude": (24.08, 24.96, 25.97, 27.08, 27.64),
        "mu_total": (3.25, 3.88, 7.05, 15.47, 25.5),
    },
}
# Catalogue columns (0-based) for the quantities above: θ_E, z_l, z_s, source mag, μ.
_CATALOGUE_COLUMNS = {
    "lenses_Euclid.txt": {"theta_e_arcsec": 2, "z_lens": 0, "z_source": 1,
                          "source_magnitude": 12, "mu_total": 13},
    "lenses_LSSTc.txt": {"theta_e_arcsec": 2, "z_lens": 0, "z_source": 1,
                         "source_magnitude": 16, "mu_total": 17},
}  # fmt: skip
QUANTITIES = ("theta_e_arcsec", "z_lens", "z_source", "source_magnitude", "mu_total", "arc_snr")
PERCENTILES = (5, 16, 50, 84, 95)


def draw_lenses(preset: str, n: int, seed: int, block: int = 64) -> dict[str, np.ndarray]:
    """Truth of ``n`` lenses of ``preset`` (rendered as a dataset renders them)."""
    config = get_lensfind_preset(preset)
    renderer = LensFindRenderer(config)
    parts = []
    for start in range(0, n, block):
        stop = min(n, start + block)
        parts.append(render_block(renderer, seed, start, stop, np.ones(stop - start, int)).truth)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def mean_theta_e_squared(preset: str, samples: int, seed: int) -> float:
    """⟨θ_E²⟩ (arcsec²) over volume-weighted deflectors and sources of the preset's population
    (θ_E = 0 for a source in front of the deflector)."""
    config = get_lensfind_preset(preset)
    d, s = config.deflector, config.source
    rng = np.random.default_rng(seed)
    sigma = velocity_dispersion_cdf(*d.velocity_dispersion_range_kms, 0.0, config.h0 / 100)(
        rng.uniform(size=samples)
    )
    z_lens = comoving_volume_cdf(*d.z_range, config.h0, config.omega_m)(rng.uniform(size=samples))
    m = source_magnitude(rng.uniform(size=samples), s.magnitude_range)
    z_source = source_redshift(rng.uniform(size=samples), rng.uniform(size=samples), m, s.z_max)
    d_l = comoving_distances_mpc(z_lens, config.h0, config.omega_m)
    d_s = comoving_distances_mpc(z_source, config.h0, config.omega_m)
    efficiency = np.clip(1.0 - d_l / d_s, 0.0, None)
    theta = 4 * np.pi * (sigma / 299_792.458) ** 2 * efficiency * 180 * 3600 / np.pi
    return float(np.mean(theta**2))


def lenses_per_deg2(preset: str, truth: dict[str, np.ndarray], samples: int, seed: int) -> dict:
    config = get_lensfind_preset(preset)
    d, s = config.deflector, config.source
    grid = np.linspace(*d.velocity_dispersion_range_kms, 4001)
    density = np.trapezoid(choi_vdf_per_mpc3_kms(grid, config.h0 / 100), grid)  # per Mpc³
    volume = comoving_volume_mpc3(d.z_range[1], config.h0, config.omega_m)
    volume -= comoving_volume_mpc3(d.z_range[0], config.h0, config.omega_m)
    deflectors = density * volume / SQ_DEG_SKY
    sources = source_counts_per_arcsec2(s.magnitude_range[1], s.magnitude_range[0])
    theta2 = mean_theta_e_squared(preset, samples, seed)
    systems = deflectors * sources * np.pi * theta2 * s.max_offset_theta_e**2
    share = len(truth["lens_draws"]) / float(np.sum(truth["lens_draws"]))
    return {
        "deflectors_per_deg2": deflectors,
        "sources_per_arcsec2": sources,
        "mean_theta_e2_arcsec2": theta2,
        "systems_per_deg2": systems,
        "share_meeting_definition": share,
        "lenses_per_deg2": systems * share,
    }


def catalogue_columns(lenspop_dir: Path | None, preset: str) -> dict[str, np.ndarray] | None:
    """Collett's catalogue columns for the preset, when ``--lenspop-dir`` holds it."""
    reference = COLLETT_QUANTILES.get(preset)
    if lenspop_dir is None or reference is None:
        return None
    path = lenspop_dir / reference["catalogue"]
    if not path.is_file():
        print(f"{preset}: no {path}; histograms without Collett's catalogue")
        return None
    table = np.loadtxt(path)
    return {name: table[:, col] for name, col in _CATALOGUE_COLUMNS[path.name].items()}


def plot(preset: str, truth: dict, catalogue: dict | None, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "theta_e_arcsec": "θ_E (arcsec)",
        "z_lens": "lens redshift",
        "z_source": "source redshift",
        "source_magnitude": "unlensed source magnitude (reference band)",
        "mu_total": "total magnification μ",
        "arc_snr": "arc S/N (best band)",
    }
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    reference = COLLETT_QUANTILES.get(preset, {})
    for ax, name in zip(axes.ravel(), QUANTITIES, strict=True):
        ours = truth[name][np.isfinite(truth[name])]
        log = name in ("mu_total", "arc_snr")
        values = np.log10(ours) if log else ours
        bins = np.histogram_bin_edges(values, bins=30)
        ax.hist(
            values, bins=bins, density=True, histtype="step", lw=2, label=f"darklens ({preset})"
        )
        if catalogue is not None and name in catalogue:
            theirs = np.log10(catalogue[name]) if log else catalogue[name]
            ax.hist(theirs, bins=bins, density=True, histtype="step", lw=1.5, ls="--",
                    label="Collett 2015 catalogue")  # fmt: skip
        if name in reference:
            for q in (reference[name][2],):
                ax.axvline(np.log10(q) if log else q, color="k", ls=":", lw=1,
                           label="Collett 2015 median")  # fmt: skip
        ax.set_xlabel(("log10 " if log else "") + labels[name])
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"population_{preset.removeprefix('lensfind_')}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="lensfind_space,lensfind_lsst,lensfind_ground")
    parser.add_argument("--n", type=int, default=1000, help="lenses drawn per preset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2_000_000, help="Monte Carlo for ⟨θ_E²⟩")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_population"))
    parser.add_argument("--lenspop-dir", type=Path, help="folder with Collett's catalogues")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        t0 = time.process_time()
        truth = draw_lenses(preset, args.n, args.seed)
        cpu = time.process_time() - t0
        counts = lenses_per_deg2(preset, truth, args.samples, args.seed)
        quantiles = {
            name: np.percentile(truth[name][np.isfinite(truth[name])], PERCENTILES).tolist()
            for name in QUANTITIES
        }
        config = get_lensfind_preset(preset)
        faint = float(np.mean(truth["source_magnitude"] > config.source.magnitude_range[1] - 1))
        figure = plot(preset, truth, catalogue_columns(args.lenspop_dir, preset), args.out)
        results[preset] = {
            "n": args.n,
            "cpu_s_per_lens": cpu / args.n,
            "counts": counts,
            "quantiles": quantiles,
            "share_within_1_mag_of_faintest_source": faint,
            "collett": COLLETT_QUANTILES.get(preset),
            "collett_paper_per_deg2": (
                COLLETT_COUNTS[preset][0] / COLLETT_COUNTS[preset][1]
                if preset in COLLETT_COUNTS
                else None
            ),
            "figure": str(figure),
        }
        print_summary(preset, results[preset])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


def print_summary(preset: str, result: dict) -> None:
    counts = result["counts"]
    print(f"\n{preset}: {result['n']} lenses, {result['cpu_s_per_lens'] * 1000:.0f} CPU-ms each")
    print(
        f"  deflectors {counts['deflectors_per_deg2']:.3g}/deg², sources "
        f"{counts['sources_per_arcsec2']:.3g}/arcsec², ⟨θ_E²⟩ {counts['mean_theta_e2_arcsec2']:.3g}"
        f" arcsec², systems {counts['systems_per_deg2']:.3g}/deg², meeting the definition "
        f"{counts['share_meeting_definition']:.3%} -> {counts['lenses_per_deg2']:.2f} lenses/deg²"
    )
    if result["collett_paper_per_deg2"]:
        print(
            f"  Collett 2015: {result['collett_paper_per_deg2']:.1f}/deg² (paper), "
            f"{result['collett']['per_deg2']:.1f}/deg² (public catalogue)"
        )
    for name, values in result["quantiles"].items():
        ref = (result["collett"] or {}).get(name)
        ref_text = f"   Collett {tuple(ref)}" if ref else ""
        print(f"  {name:18s} {tuple(round(v, 3) for v in values)}{ref_text}")
    print(
        "  share of lenses within 1 mag of the faintest source drawn: "
        f"{result['share_within_1_mag_of_faintest_source']:.2%}"
    )


if __name__ == "__main__":
    main()
