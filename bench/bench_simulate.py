"""Simulation throughput: darklens (caustics, batched) vs a per-image lenstronomy loop, same run.

    python bench/bench_simulate.py --preset model_ii --n-per-class 3000
    python bench/bench_simulate.py --lensfind lensfind_ground --n-per-class 1000

Prints images/s for: the lenstronomy loop (one ImageModel per number of point masses, reused —
the careful baseline), our renderer in-process, and the full `simulate` pipeline (sampling,
rendering, noise, HDF5 write) with 1 and 2 worker processes. Substructure classes only (cdm and
axion) and the full three-class mix are reported separately.

``--lensfind PRESET`` times the lens-finding simulator instead, on equal numbers of lenses and
non-lenses: a plain lenstronomy loop (per band one ``ImageModel`` per component layout, reused,
its Gaussian PSF updated to each image's seeing; SIE + SHEAR mass, SERSIC_ELLIPSE lens light and
source, amplitudes from the AB magnitudes as lenstronomy's SimAPI converts them, supersampled
like ours) against our batched renderer, both rendering the first system
``draw_lensfind_params`` draws for each image and adding the same CCD noise. Look-alike parts
lenstronomy has no profile for (spiral arms, rings, clumps, tidal arcs, stars) are left out of
the loop, so the baseline does a little less work than ours. The dataset rows (``render_block``
and ``simulate``) are the full simulator: each image draws cross-section-weighted systems until
one meets the lens definition (for lenses and for the non-lenses matched to them), renders it
and measures its detectability, so they cost several renders per image.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util.param_util import phi_q2_ellipticity

from darklens.simulate.api import simulate
from darklens.simulate.func.noise import add_ccd_noise, add_count_noise
from darklens.simulate.func.rng import (
    NOISE_STREAM,
    PARAMS_STREAM,
    counter_keys,
    image_rng,
    keys_tensor,
)
from darklens.simulate.lensfind import LENSFIND_PRESETS, LensFindConfig, LensFindRenderer
from darklens.simulate.lensfind import draw_lensfind_params as draw_lensfind
from darklens.simulate.lensfind.kind import render_block as render_lensfind_block
from darklens.simulate.lensfind.noise import noise_levels, observe
from darklens.simulate.substructure.kind import KIND as SUBSTRUCTURE
from darklens.simulate.substructure.presets import get_preset
from darklens.simulate.substructure.reference import LenstronomyRenderer
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import draw_image_params


def lenstronomy_loop(config, labels: list[int]) -> float:
    """Images/s of sampling + lenstronomy render + noise, one image at a time."""
    renderer = LenstronomyRenderer(config)
    for label in set(labels):  # build the ImageModels outside the timing
        renderer.render_one(draw_image_params(config, label, 0, 0))
    t0 = time.perf_counter()
    for i, label in enumerate(labels):
        p = draw_image_params(config, label, 0, i)
        numpy_noise(renderer.render_one(p), config, image_rng(0, i, NOISE_STREAM), p.exposure_s)
    return len(labels) / (time.perf_counter() - t0)


def numpy_noise(image: np.ndarray, config, rng: np.random.Generator, exposure_s: float):
    """The baseline's noise, one image at a time with a NumPy generator (as a loop would)."""
    inst = config.instrument
    if inst.noise == "counts":
        return add_count_noise(image, rng, inst.background_rms, exposure_s)
    return add_ccd_noise(image, rng, inst.background_sigma, exposure_s)


def ours_in_process(config, labels: list[int], batch: int) -> float:
    renderer = SubstructureRenderer(config)
    sub = config.override({"class_names": [config.class_names[k] for k in sorted(set(labels))]})
    renderer = SubstructureRenderer(sub)
    n_classes = len(sub.class_names)

    def block(start: int, stop: int) -> None:
        SUBSTRUCTURE.render_block(renderer, 0, start, stop, np.arange(start, stop) % n_classes)

    block(0, min(batch, len(labels)))  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(labels), batch):
        block(start, min(start + batch, len(labels)))
    return len(labels) / (time.perf_counter() - t0)


# -- lens finding ---------------------------------------------------------------------------------
class LenstronomyLensFind:
    """Lens-finding images one at a time with lenstronomy: per band, one ImageModel per layout
    (number of Sérsic lights, lensed source or not), built once and reused."""

    def __init__(self, config: LensFindConfig) -> None:
        inst = config.instrument
        self.config = config
        n, pix = inst.num_pix, inst.pixel_scale_arcsec
        corner = -(n - 1) / 2.0 * pix
        self._data = ImageData(
            image_data=np.zeros((n, n)),
            ra_at_xy_0=corner,
            dec_at_xy_0=corner,
            transform_pix2angle=np.array([[pix, 0.0], [0.0, pix]]),
        )
        self._zero_points = np.array([b.magnitude_zero_point for b in inst.bands])
        self._sersic = LightModel(["SERSIC_ELLIPSE"])
        self._models: dict[tuple[int, bool, int], ImageModel] = {}

    def _model(self, n_lights: int, lensed: bool, band: int) -> ImageModel:
        key = (n_lights, lensed, band)
        if key not in self._models:
            inst = self.config.instrument
            psf = PSF(
                psf_type="GAUSSIAN",
                fwhm=inst.bands[band].seeing_fwhm_range_arcsec[0],
                pixel_size=inst.pixel_scale_arcsec,
                truncation=inst.psf_truncation_sigma,
            )
            self._models[key] = ImageModel(
                self._data,
                psf,
                lens_model_class=LensModel(["SIE", "SHEAR"]) if lensed else None,
                source_model_class=LightModel(["SERSIC_ELLIPSE"]) if lensed else None,
                lens_light_model_class=LightModel(["SERSIC_ELLIPSE"] * n_lights),
                kwargs_numerics={
                    "supersampling_factor": inst.supersampling,
                    "supersampling_convolution": False,
                },
            )
        return self._models[key]

    def _sersic_kwargs(self, light) -> tuple[dict, np.ndarray]:
        """lenstronomy kwargs without ``amp``, and the amplitude per band for its magnitudes."""
        e1, e2 = phi_q2_ellipticity(light.phi, light.q)
        kwargs = {
            "R_sersic": light.r_sersic,
            "n_sersic": light.n,
            "e1": e1,
            "e2": e2,
            "center_x": light.x,
            "center_y": light.y,
        }
        unit_flux = self._sersic.total_flux([{"amp": 1.0, **kwargs}])[0]
        return kwargs, 10.0 ** (-0.4 * (light.magnitudes - self._zero_points)) / unit_flux

    def render_one(self, p) -> np.ndarray:
        """Noiseless image [bands, H, W] in e-/s per pixel."""
        inst = self.config.instrument
        lights = [c for c in (p.galaxy, p.companion, p.disc) if c is not None]
        light_kwargs = [self._sersic_kwargs(c) for c in lights]
        lensed = p.deflector is not None
        kwargs_lens = source = None
        if lensed:
            d = p.deflector
            e1, e2 = phi_q2_ellipticity(d.phi, d.q)
            kwargs_lens = [
                {"theta_E": d.theta_e, "e1": e1, "e2": e2, "center_x": d.x, "center_y": d.y},
                {"gamma1": d.gamma1, "gamma2": d.gamma2, "ra_0": d.x, "dec_0": d.y},
            ]
            source = self._sersic_kwargs(p.source)
        bands = []
        for b in range(len(inst.bands)):
            model = self._model(len(lights), lensed, b)
            model.update_psf(
                PSF(
                    psf_type="GAUSSIAN",
                    fwhm=float(p.seeing_fwhm_arcsec[b]),
                    pixel_size=inst.pixel_scale_arcsec,
                    truncation=inst.psf_truncation_sigma,
                )
            )
            kwargs_light = [{"amp": amps[b], **kw} for kw, amps in light_kwargs]
            kwargs_source = [{"amp": source[1][b], **source[0]}] if lensed else None
            bands.append(model.image(kwargs_lens, kwargs_source, kwargs_light))
        return np.stack(bands)


def lensfind_lenstronomy_loop(config: LensFindConfig, labels: list[int]) -> float:
    """Images/s of sampling + lenstronomy render + noise, one image at a time."""
    renderer = LenstronomyLensFind(config)
    background, exposure = noise_levels(config)
    for i in range(20):  # build the ImageModels outside the timing
        renderer.render_one(draw_lensfind(config, i % 2, image_rng(1, i, PARAMS_STREAM)))
    t0 = time.perf_counter()
    for i, label in enumerate(labels):
        p = draw_lensfind(config, label, image_rng(0, i, PARAMS_STREAM))
        model, rng = renderer.render_one(p), image_rng(0, i, NOISE_STREAM)
        [add_ccd_noise(model[b], rng, background[b], exposure[b]) for b in range(len(model))]
    return len(labels) / (time.perf_counter() - t0)


def lensfind_renderer_only(config: LensFindConfig, labels: list[int], batch: int) -> float:
    """Images/s of our renderer + noise on the first system drawn per image (the lenstronomy
    loop's work), one process."""
    renderer = LensFindRenderer(config)
    background, exposure = noise_levels(config)
    params = [draw_lensfind(config, label, image_rng(0, i, PARAMS_STREAM)) for i, label in
              enumerate(labels)]  # fmt: skip
    renderer.render(params[:batch])
    t0 = time.perf_counter()
    for start in range(0, len(params), batch):
        models = torch.from_numpy(renderer.render(params[start : start + batch]).models)
        keys = counter_keys(0, np.arange(start, start + len(models)), NOISE_STREAM)
        observe(models, keys_tensor(keys, "cpu"), background, exposure)
    return len(labels) / (time.perf_counter() - t0)


def lensfind_ours_in_process(config: LensFindConfig, labels: list[int], batch: int) -> float:
    """Images/s of ``render_block``: population draws until the lens definition is met, render,
    detectability, noise, truth; one process."""
    renderer = LensFindRenderer(config)
    labels_array = np.asarray(labels)
    warm = min(batch, len(labels))
    render_lensfind_block(renderer, 1, 0, warm, labels_array[:warm])
    t0 = time.perf_counter()
    for start in range(0, len(labels), batch):
        stop = min(start + batch, len(labels))
        render_lensfind_block(renderer, 0, start, stop, labels_array[start:stop])
    return len(labels) / (time.perf_counter() - t0)


def lensfind_rows(name: str, n_per_class: int, n_lenstronomy: int, batch: int) -> list:
    config = LENSFIND_PRESETS.get(name)
    lt = lensfind_lenstronomy_loop(config, [i % 2 for i in range(2 * n_lenstronomy)])
    labels = [i % 2 for i in range(2 * n_per_class)]
    renderer = lensfind_renderer_only(config, labels, batch)
    ours = lensfind_ours_in_process(config, labels, batch)
    rows = [
        (f"{name}: lenstronomy per-image loop, 1 process", lt, 1.0),
        (f"{name}: darklens renderer + noise, 1 process", renderer, renderer / lt),
        (f"{name}: darklens render_block (lens definition met), 1 process", ours, ours / lt),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            result = simulate(
                config,
                Path(tmp) / f"w{workers}.h5",
                n=2 * n_per_class,
                lens_fraction=(0.5, 0.5, 0.5),
                workers=workers,
                batch_size=batch,
            )
            rows.append(
                (
                    f"{name}: `darklens simulate` to HDF5, {workers} worker(s)",
                    result.images_per_second,
                    result.images_per_second / lt,
                )
            )
    return rows


def print_rows(rows: list) -> None:
    print(f"{'what':64s} {'images/s':>10s} {'vs lenstronomy':>15s}")
    for what, rate, ratio in rows:
        print(f"{what:64s} {rate:10,.0f} {ratio:14.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="model_ii")
    parser.add_argument(
        "--lensfind",
        choices=LENSFIND_PRESETS.names(),
        help="time this lens-finding preset instead (classes: lens, non-lens)",
    )
    parser.add_argument("--n-per-class", type=int, default=3000)
    parser.add_argument("--n-lenstronomy", type=int, default=300, help="images per class")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.lensfind:
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__}; preset {args.lensfind}"
        )
        print_rows(
            lensfind_rows(args.lensfind, args.n_per_class, args.n_lenstronomy, args.batch_size)
        )
        return
    config = get_preset(args.preset)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; preset {args.preset}"
    )
    rows = []
    for name, classes in [("cdm+axion", [1, 2]), ("all 3 classes", [0, 1, 2])]:
        n_lt = args.n_lenstronomy * len(classes)
        lt = lenstronomy_loop(config, [classes[i % len(classes)] for i in range(n_lt)])
        n_ours = args.n_per_class * len(classes)
        ours = ours_in_process(
            config, [classes[i % len(classes)] for i in range(n_ours)], args.batch_size
        )
        rows.append((f"{name}: lenstronomy per-image loop, 1 process", lt, 1.0))
        rows.append((f"{name}: darklens renderer + noise, 1 process", ours, ours / lt))
    lt_all = rows[2][1]
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            result = simulate(
                config,
                Path(tmp) / f"w{workers}.h5",
                n_per_class=args.n_per_class,
                workers=workers,
                batch_size=args.batch_size,
            )
            rows.append(
                (
                    f"all 3 classes: `darklens simulate` to HDF5, {workers} worker(s)",
                    result.images_per_second,
                    result.images_per_second / lt_all,
                )
            )
    print_rows(rows)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
