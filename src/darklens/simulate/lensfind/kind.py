"""The lens-finding simulator kind: layout, block rendering, truth and manifest.

Layout (fixed by n, the fractions and the seed): the split of each image comes from a seeded
permutation of exact per-split counts (as the substructure engine); within each split, a seeded
permutation picks exactly round(lens_fraction[split] · n_split) lenses. Image i's pixels and
truth then depend only on (config, seed, i, its label), never on the batch size, the number of
workers or the order in which blocks finish: an image that draws lens systems until one meets
the lens definition does so from its own generator, and whether a system passes depends only on
its own render.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from darklens.simulate.blocks import one_cpu_thread
from darklens.simulate.func.profiles import sersic_unit_norm
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
from darklens.simulate.lensfind.detect import (
    Detectability,
    may_meet_definition,
    measure,
    meets_definition,
    peak_surface_brightness,
    snr_upper_bound,
)
from darklens.simulate.lensfind.noise import lensed_snr, noise_levels, observe
from darklens.simulate.lensfind.presets import LENSFIND_PRESETS
from darklens.simulate.lensfind.render import LensFindRenderer
from darklens.simulate.lensfind.sampling import (
    ImageHeader,
    LensFindParams,
    draw_disc_lookalike,
    draw_header,
    draw_system,
    without_source,
)

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


_SCALAR_TRUTH = (
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
    "mu_total",
    "arc_snr",
    "mag_eff",
    "arc_flux_fraction",
)


def truth_columns(config: LensFindConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-image truth (``*_bands``: one value per band; magnitudes AB, unlensed; angles arcsec).

    is_lens; lookalike_kind (code into the manifest's ``lookalike_kinds``; lenses can have a
    neighbour, line-of-sight galaxy or stars too); theta_e_arcsec and velocity_dispersion_kms
    (the SIS σ the deflector was drawn with); z_lens (of the central galaxy, for every image),
    z_source; source_magnitude (reference band, Sérsic + clumps), source half-light size and
    unlensed position; lens_magnitude (central galaxy, or the whole central look-alike, in the
    reference band) and the central profile's R_sersic. Detectability
    (:mod:`~darklens.simulate.lensfind.detect`): lensed_snr (matched-filter S/N of the lensed
    source, bands in quadrature), arc_snr (optimal-aperture S/N in the best band, per band in
    arc_snr_bands), mu_total (total lensed / unlensed source flux over the whole image plane,
    ≥ 1), n_pix_source, n_source_im, mag_eff, resolved, arc_flux_fraction (lensed source flux /
    all flux in the cutout, reference band), lens_draws (systems drawn until one met the lens
    definition: 1/mean is the fraction of cross-section-weighted systems that are lenses);
    seeing_fwhm_arcsec. Source quantities are NaN (S/N and counts 0) for non-lenses, except for
    the ``undetectable_lens`` look-alikes, which keep theirs.
    """
    bands = (len(config.instrument.bands),)
    columns: dict[str, tuple[tuple[int, ...], str]] = {
        name: ((), "float64") for name in _SCALAR_TRUTH
    }
    columns |= {"is_lens": ((), "int8"), "lookalike_kind": ((), "int8"), "resolved": ((), "int8")}
    columns |= {name: ((), "int32") for name in ("n_pix_source", "n_source_im", "lens_draws")}
    for name in ("source_magnitude_bands", "lens_magnitude_bands", "lensed_snr_bands"):
        columns[name] = (bands, "float64")
    columns["arc_snr_bands"] = (bands, "float64")
    columns["seeing_fwhm_arcsec"] = (bands, "float64")
    return columns


@dataclass
class _Drawn:
    """One image's accepted parameters, noiseless renders and detectability (None: no source)."""

    params: LensFindParams
    model: np.ndarray
    source: np.ndarray
    magnification: float = float("nan")
    detectability: Detectability | None = None


def _detectability(renderer: LensFindRenderer, p: LensFindParams, model, source, mu: float):
    config = renderer.config
    background, exposure = noise_levels(config)
    return measure(
        source,
        model,
        background,
        exposure,
        renderer.flux_e_per_s(p.source_magnitudes()),
        magnification=mu,
        source_radius_arcsec=p.source.r_sersic / math.sqrt(p.source.q),
        theta_e_arcsec=p.theta_e,
        seeing_fwhm_arcsec=p.seeing_fwhm_arcsec,
        lens_light_residual=config.lens_definition.lens_light_residual,
    )


def _may_pass(renderer: LensFindRenderer, p: LensFindParams, mu: float) -> bool:
    """Whether a system could meet the lens definition, judged before rendering it."""
    config = renderer.config
    background, _ = noise_levels(config)
    source = p.source
    flux = renderer.flux_e_per_s(source.magnitudes)
    norm = float(sersic_unit_norm(np.array(source.r_sersic), np.array(source.n)))
    peak = peak_surface_brightness(flux, source.r_sersic, source.n, norm)
    if p.source_clumps is not None:
        clumps = p.source_clumps
        clump_flux = renderer.flux_e_per_s(clumps.magnitudes)
        used = clumps.weight > 0
        peaks = clumps.weight[used] / (2.0 * np.pi * clumps.sigma[used] ** 2)
        flux = flux + clump_flux
        peak = peak + clump_flux * float(np.sum(peaks))
    bound = snr_upper_bound(
        mu * flux, peak, renderer.pixel_area, renderer.kernel_l2_squared([p])[0], background
    )
    radius = source.r_sersic / math.sqrt(source.q)
    return may_meet_definition(config.lens_definition.name, mu, bound, radius, p.seeing_fwhm_arcsec)


def _accept_systems(
    renderer: LensFindRenderer,
    headers: list[ImageHeader],
    rngs: list[np.random.Generator],
    indices: list[int],
) -> dict[int, _Drawn]:
    """Draw systems for each image until one meets the lens definition (fails it, for the
    ``undetectable_lens`` look-alike); each image's outcome depends only on its own draws."""
    config = renderer.config
    definition = config.lens_definition
    current = {j: draw_system(config, headers[j], rngs[j]) for j in indices}
    draws = {j: current[j].lens_draws for j in indices}
    accepted: dict[int, _Drawn] = {}
    pending = list(indices)

    def redraw(j: int) -> None:
        current[j] = draw_system(config, headers[j], rngs[j])
        draws[j] += current[j].lens_draws
        if draws[j] > definition.max_draws:
            wanted = "fell below" if headers[j].kind_name == "undetectable_lens" else "met"
            raise RuntimeError(
                f"no lens system {wanted} the lens definition {definition.name!r} within "
                f"{definition.max_draws} draws (lens_definition.max_draws); the population or "
                "the survey cannot produce such systems: change the definition or the sources "
                "(source.magnitude_range)"
            )

    while pending:
        mu = renderer.magnification([current[j] for j in pending])
        wanted = {j: headers[j].kind_name != "undetectable_lens" for j in pending}
        survivors = []
        for j, m in zip(pending, mu, strict=True):
            if not wanted[j] or _may_pass(renderer, current[j], float(m)):
                survivors.append((j, float(m)))
            else:
                redraw(j)
        rendered = renderer.render([current[j] for j, _ in survivors], with_magnification=False)
        pending = [j for j in pending if j not in dict(survivors)]
        for k, (j, m) in enumerate(survivors):
            p = current[j]
            det = _detectability(renderer, p, rendered.models[k], rendered.source_models[k], m)
            if meets_definition(definition.name, det) == wanted[j]:
                p.lens_draws = draws[j]
                accepted[j] = _Drawn(p, rendered.models[k], rendered.source_models[k], m, det)
            else:
                redraw(j)
                pending.append(j)
        pending.sort()
    return accepted


def _draw_block(renderer: LensFindRenderer, seed: int, start: int, labels) -> list[_Drawn]:
    config = renderer.config
    ref = config.instrument.reference_index
    rngs = [image_rng(seed, start + j, PARAMS_STREAM) for j in range(len(labels))]
    headers = [
        draw_header(config, int(label), rng) for label, rng in zip(labels, rngs, strict=True)
    ]
    drawn = _accept_systems(renderer, headers, rngs, list(range(len(labels))))
    discs = [j for j, h in enumerate(headers) if h.is_disc]
    params = [
        draw_disc_lookalike(
            config, headers[j], float(drawn[j].params.galaxy.magnitudes[ref]), rngs[j]
        )
        for j in discs
    ]
    rendered = renderer.render(params)
    for k, j in enumerate(discs):
        drawn[j] = _Drawn(params[k], rendered.models[k], rendered.source_models[k])
    for j, header in enumerate(headers):
        if header.label == 0 and not header.is_disc and header.kind_name != "undetectable_lens":
            # a matched non-lens: the deflector galaxy and extras without the source
            item = drawn[j]
            item.model = item.model - item.source
            item.source = np.zeros_like(item.source)
            item.params = without_source(item.params)
            item.magnification, item.detectability = float("nan"), None
    return [drawn[j] for j in range(len(labels))]


def render_block(
    renderer: LensFindRenderer, seed: int, start: int, stop: int, labels: np.ndarray
) -> Block:
    """Images [b, bands, H, W] and truth for indices start..stop-1 with the given labels."""
    config = renderer.config
    with one_cpu_thread(renderer.device):
        drawn = _draw_block(renderer, seed, start, labels)
    background, exposure = noise_levels(config)
    models = np.stack([item.model for item in drawn]).astype(np.float32)
    if config.instrument.noise == "ccd":
        with one_cpu_thread(renderer.device):
            tensor = torch.from_numpy(models).to(renderer.device)
            keys = counter_keys(seed, np.arange(start, start + len(drawn)), NOISE_STREAM)
            images = observe(tensor, keys_tensor(keys, tensor.device), background, exposure)
            images = images.cpu().numpy()
    else:
        images = models
    truth = _truth(renderer, drawn, labels)
    return Block(images, truth, clean=models if config.store_clean else None)


def _truth(renderer: LensFindRenderer, drawn: list[_Drawn], labels) -> dict[str, np.ndarray]:
    config = renderer.config
    ref = config.instrument.reference_index
    n_bands = len(config.instrument.bands)
    background, exposure = noise_levels(config)
    params = [item.params for item in drawn]
    nan_bands = np.full(n_bands, np.nan)
    snr = np.zeros((len(drawn), n_bands))
    arc_snr = np.zeros((len(drawn), n_bands))
    for j, item in enumerate(drawn):
        if item.params.source is not None:
            snr[j] = lensed_snr(item.source, item.model, background, exposure)
            arc_snr[j] = item.detectability.arc_snr_bands
    source_mags = np.stack([p.source_magnitudes() if p.source else nan_bands for p in params])
    lens_mags = np.stack([p.central_magnitudes() for p in params])
    dets = [item.detectability for item in drawn]

    def column(get, dtype=np.float64) -> np.ndarray:
        return np.array([get(p) for p in params], dtype=dtype)

    def detected(get, empty, dtype=np.float64) -> np.ndarray:
        return np.array([get(d) if d is not None else empty for d in dets], dtype=dtype)

    def flux_fraction(item: _Drawn) -> float:
        total = float(np.sum(item.model[ref]))
        return (
            float(np.sum(item.source[ref])) / total if item.params.source and total > 0 else np.nan
        )

    def source_get(name: str):
        return lambda p: getattr(p.source, name) if p.source else np.nan

    return {
        "is_lens": np.asarray(labels, dtype=np.int8),
        "lookalike_kind": column(lambda p: p.kind, np.int8),
        "theta_e_arcsec": column(lambda p: p.theta_e),
        "velocity_dispersion_kms": column(lambda p: p.velocity_dispersion_kms),
        "z_lens": column(lambda p: p.z_lens),
        "z_source": column(lambda p: p.z_source),
        "source_magnitude": source_mags[:, ref],
        "source_magnitude_bands": source_mags,
        "source_r_sersic_arcsec": column(source_get("r_sersic")),
        "source_x_arcsec": column(source_get("x")),
        "source_y_arcsec": column(source_get("y")),
        "lens_magnitude": lens_mags[:, ref],
        "lens_magnitude_bands": lens_mags,
        "lens_r_sersic_arcsec": column(lambda p: p.galaxy.r_sersic),
        "lensed_snr": np.sqrt(np.sum(snr**2, axis=1)),
        "lensed_snr_bands": snr,
        "mu_total": np.array([item.magnification for item in drawn]),
        "arc_snr": detected(lambda d: d.arc_snr, 0.0),
        "arc_snr_bands": arc_snr,
        "n_pix_source": detected(lambda d: d.n_pix_source, 0, np.int32),
        "n_source_im": detected(lambda d: d.n_source_im, 0, np.int32),
        "mag_eff": detected(lambda d: d.mag_eff, np.nan),
        "resolved": detected(lambda d: d.resolved, 0, np.int8),
        "arc_flux_fraction": np.array([flux_fraction(item) for item in drawn]),
        "lens_draws": column(lambda p: p.lens_draws, np.int32),
        "seeing_fwhm_arcsec": np.stack([p.seeing_fwhm_arcsec for p in params]),
    }


def dataset_manifest(config: LensFindConfig, n: int, lens_fraction: Sequence[float]) -> dict:
    """What the file records beyond the common fields: layout, bands, noise, look-alike codes."""
    background, exposure = noise_levels(config)
    inst = config.instrument
    return {
        "n": n,
        "lens_fraction": list(lens_fraction),
        "band_names": list(inst.band_names),
        "reference_band": inst.reference_band,
        "magnitude_zero_points": [b.magnitude_zero_point for b in inst.bands],
        "pixel_scale_arcsec": inst.pixel_scale_arcsec,
        "background_sigma_e_per_s": background.tolist(),
        "exposure_s": exposure.tolist(),
        "lookalike_kinds": {str(code): name for code, name in enumerate(LOOKALIKE_KINDS)},
        "lens_definition": config.lens_definition.name,
        "image_units": "e-/s per pixel" if inst.noise == "ccd" else "e-/s per pixel (noiseless)",
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
    image_shape=image_shape,
    truth_columns=truth_columns,
    manifest=lambda config, renderer, size: dataset_manifest(
        config, count(config, size), _lens_fraction(size)
    ),
    summary=summary,
)
