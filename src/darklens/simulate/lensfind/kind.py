"""The lens-finding simulator kind: layout, block rendering, truth and manifest.

Layout (fixed by n, the fractions and the seed): the split of each image comes from a seeded
permutation of exact per-split counts (as the substructure engine); within each split, a seeded
permutation picks exactly round(lens_fraction[split] · n_split) lenses. Image i's pixels and
truth then depend only on (config, seed, i, its label), never on the batch size, the number of
workers or the order in which blocks finish.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from darklens import __version__
from darklens.citations import dataset_citations
from darklens.data.h5 import SPLIT_NAMES
from darklens.simulate.blocks import one_cpu_thread
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
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
from darklens.simulate.lensfind.config import LOOKALIKE_KINDS, LensFindConfig
from darklens.simulate.lensfind.noise import lensed_snr, noise_levels, observe
from darklens.simulate.lensfind.presets import LENSFIND_PRESETS
from darklens.simulate.lensfind.render import LensFindRenderer
from darklens.simulate.lensfind.sampling import LensFindParams, draw_lensfind_params

DEFAULT_N = 1000
DEFAULT_LENS_FRACTION = (0.06, 0.06, 0.01)
# Dataset-level streams: the split permutation (shared with the substructure kind's key) and the
# placement of lenses within each split.
_SPLIT_KEY, _LENS_KEY = 0, 1


def lensfind_layout(
    n: int, lens_fraction: Sequence[float], split: Sequence[float], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(split code per image: 0 train, 1 val, 2 test; label per image: 1 lens, 0 non-lens)."""
    lens_fraction = tuple(float(f) for f in lens_fraction)
    if len(lens_fraction) != 3 or not all(0.0 <= f <= 1.0 for f in lens_fraction):
        raise ValueError(
            "lens fractions must be three numbers in [0, 1] (train, val, test), "
            f"got {lens_fraction}"
        )
    split_codes = stratified_split_codes(
        np.zeros(n, dtype=np.int64), split, layout_rng(seed, _SPLIT_KEY)
    )
    rng = layout_rng(seed, _LENS_KEY)
    labels = np.zeros(n, dtype=np.int64)
    for code, fraction in enumerate(lens_fraction):
        members = np.flatnonzero(split_codes == code)
        n_lenses = round(fraction * len(members))
        labels[rng.permutation(members)[:n_lenses]] = 1
    return split_codes, labels


def truth_columns(config: LensFindConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-image truth (``*_bands``: one value per band; magnitudes AB, unlensed; angles arcsec).

    is_lens; lookalike_kind (code into the manifest's ``lookalike_kinds``; lenses can have a
    neighbour, line-of-sight galaxy or stars too); theta_e_arcsec and velocity_dispersion_kms
    (SIS σ of that θ_E); z_lens, z_source; source_magnitude (reference band), source size and
    unlensed position; lens_magnitude (central galaxy, or the whole central look-alike, in the
    reference band) and the central profile's R_sersic; lensed_snr (matched-filter S/N of the
    lensed source in the cutout, bands combined in quadrature; 0 for non-lenses); magnification
    (total lensed / unlensed source flux over the whole image plane, ≥ 1 since the lens has
    κ ≥ 0); seeing_fwhm_arcsec. Source quantities are NaN for non-lenses.
    """
    bands = (len(config.instrument.bands),)
    scalars = (
        "theta_e_arcsec",
        "velocity_dispersion_kms",
        "z_lens",
        "z_source",
        "source_magnitude",
        "source_r_sersic_arcsec",
        "source_x_arcsec",
        "source_y_arcsec",
        "lens_magnitude",
        "lens_r_sersic_arcsec",
        "lensed_snr",
        "magnification",
    )
    columns: dict[str, tuple[tuple[int, ...], str]] = {name: ((), "float64") for name in scalars}
    columns |= {"is_lens": ((), "int8"), "lookalike_kind": ((), "int8")}
    for name in ("source_magnitude_bands", "lens_magnitude_bands", "lensed_snr_bands"):
        columns[name] = (bands, "float64")
    columns["seeing_fwhm_arcsec"] = (bands, "float64")
    return columns


def draw_block(
    config: LensFindConfig, seed: int, start: int, stop: int, labels: np.ndarray
) -> list[LensFindParams]:
    """The parameters of images start..stop-1 (host-side Python: what worker processes draw
    for a GPU run)."""
    return [
        draw_lensfind_params(config, int(label), image_rng(seed, index, PARAMS_STREAM))
        for index, label in zip(range(start, stop), labels, strict=True)
    ]


def render_block(
    renderer: LensFindRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> Block:
    """Images [b, bands, H, W] and truth for indices start..stop-1 with the given labels."""
    params = draw_block(renderer.config, seed, start, stop, labels)
    return render_drawn(renderer, seed, start, stop, labels, params)


def render_drawn(
    renderer: LensFindRenderer,
    seed: int,
    start: int,
    stop: int,
    labels: np.ndarray,
    params: list[LensFindParams],
) -> Block:
    """:func:`render_block` for parameters already drawn by :func:`draw_block`."""
    config = renderer.config
    background, exposure = noise_levels(config)
    with one_cpu_thread(renderer.device):
        rendered = renderer.render(params)
        models = torch.from_numpy(rendered.models).to(renderer.device)
        if config.instrument.noise == "ccd":
            keys = keys_tensor(
                counter_keys(seed, np.arange(start, stop), NOISE_STREAM), models.device
            )
            images = observe(models, keys, background, exposure).cpu().numpy()
        else:
            images = rendered.models
    ref = config.instrument.reference_index
    n_bands = len(config.instrument.bands)
    snr = np.zeros((len(params), n_bands))
    lenses = np.flatnonzero([p.deflector is not None for p in params])
    if len(lenses):
        snr[lenses] = lensed_snr(
            rendered.source_models[lenses], rendered.models[lenses], background, exposure
        )
    nan_bands = np.full(n_bands, np.nan)
    source_mags = np.stack([p.source.magnitudes if p.source else nan_bands for p in params])
    lens_mags = np.stack([p.central_magnitudes() for p in params])

    def column(get) -> np.ndarray:
        return np.array([get(p) for p in params], dtype=np.float64)

    truth = {
        "is_lens": np.asarray(labels, dtype=np.int8),
        "lookalike_kind": np.array([p.kind for p in params], dtype=np.int8),
        "theta_e_arcsec": column(lambda p: p.theta_e),
        "velocity_dispersion_kms": column(lambda p: p.velocity_dispersion_kms),
        "z_lens": column(lambda p: p.z_lens),
        "z_source": column(lambda p: p.z_source),
        "source_magnitude": source_mags[:, ref],
        "source_magnitude_bands": source_mags,
        "source_r_sersic_arcsec": column(lambda p: p.source.r_sersic if p.source else np.nan),
        "source_x_arcsec": column(lambda p: p.source.x if p.source else np.nan),
        "source_y_arcsec": column(lambda p: p.source.y if p.source else np.nan),
        "lens_magnitude": lens_mags[:, ref],
        "lens_magnitude_bands": lens_mags,
        "lens_r_sersic_arcsec": column(lambda p: p.galaxy.r_sersic),
        "lensed_snr": np.sqrt(np.sum(snr**2, axis=1)),
        "lensed_snr_bands": snr,
        "magnification": rendered.magnification,
        "seeing_fwhm_arcsec": np.stack([p.seeing_fwhm_arcsec for p in params]),
    }
    clean = rendered.models.astype(np.float32) if config.store_clean else None
    return Block(images, truth, clean=clean)


def dataset_manifest(
    config: LensFindConfig,
    seed: int,
    n: int,
    lens_fraction: Sequence[float],
    split: Sequence[float],
) -> dict:
    """What the file records about how it was made (config, layout, bands, look-alike codes)."""
    background, exposure = noise_levels(config)
    inst = config.instrument
    return {
        "kind": "lens_finding",
        "preset": config.preset,
        "config": config.to_dict(),
        "seed": seed,
        "n": n,
        "lens_fraction": list(lens_fraction),
        "split_fractions": list(split),
        "split_names": list(SPLIT_NAMES),
        "band_names": list(inst.band_names),
        "reference_band": inst.reference_band,
        "magnitude_zero_points": [b.magnitude_zero_point for b in inst.bands],
        "pixel_scale_arcsec": inst.pixel_scale_arcsec,
        "background_sigma_e_per_s": background.tolist(),
        "exposure_s": exposure.tolist(),
        "lookalike_kinds": {str(code): name for code, name in enumerate(LOOKALIKE_KINDS)},
        "image_units": "e-/s per pixel" if inst.noise == "ccd" else "e-/s per pixel (noiseless)",
        "darklens_version": __version__,
        "citations": dataset_citations(config.preset),
    }


def count(config: LensFindConfig, size: SizeRequest) -> int:
    """``n`` images in total (default 1000)."""
    refuse_options(config.preset, "lens-finding", size, ["--n", "--lens-fraction"])
    return requested(size.n, DEFAULT_N, "--n")


def _lens_fraction(size: SizeRequest) -> tuple[float, ...]:
    return DEFAULT_LENS_FRACTION if size.lens_fraction is None else size.lens_fraction


def layout(config: LensFindConfig, size: SizeRequest, split: Sequence[float], seed: int) -> Layout:
    split_codes, labels = lensfind_layout(count(config, size), _lens_fraction(size), split, seed)
    return Layout(labels, split_codes)


def summary(config: LensFindConfig) -> str:
    inst = config.instrument
    grid = f'{inst.num_pix}x{inst.num_pix} px at {inst.pixel_scale_arcsec}" ({inst.name})'
    seeing = [b.seeing_fwhm_range_arcsec for b in inst.bands]
    low, high = min(s[0] for s in seeing), max(s[1] for s in seeing)
    return (
        f'{config.preset:18s} {grid}, bands {",".join(inst.band_names)}, seeing {low}-{high}", '
        f"noise: {inst.noise} (lens finding)"
    )


def image_shape(config: LensFindConfig) -> tuple[int, int, int]:
    inst = config.instrument
    return (len(inst.bands), inst.num_pix, inst.num_pix)


KIND = SimulatorKind(
    name="lens_finding",
    config_type=LensFindConfig,
    presets=LENSFIND_PRESETS,
    count=count,
    layout=layout,
    renderer=lambda config, device: LensFindRenderer(config, device=device),
    render_block=render_block,
    draw_block=draw_block,
    render_drawn=render_drawn,
    image_shape=image_shape,
    truth_columns=truth_columns,
    manifest=lambda config, renderer, seed, size, split: dataset_manifest(
        config, seed, count(config, size), _lens_fraction(size), split
    ),
    summary=summary,
)
