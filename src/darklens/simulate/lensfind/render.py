"""Batched, noiseless multi-band rendering of lenses and look-alikes with caustics' functions.

Per image: surface brightness of every component (unit total flux: Sérsic galaxies, spiral arms,
rings, Gaussian clumps, tidal arcs) on the supersampled grid, the lensed source (Sérsic and its
clumps) ray-shot through SIE + external shear, each combined per band with its flux (e-/s from
the AB magnitude and the band's zero point), averaged to pixels, convolved with the image's own
Gaussian PSF per band (lenstronomy's truncated, edge-extended kernel), then stars added as
PSF-shaped point sources. Values are e-/s per pixel.

Images are rendered in groups sharing the same components (plain galaxy, lens, lens with a
star, spiral, ...) and in cache-sized chunks; all operations are elementwise on per-image pixel
vectors padded to a multiple of 64, so an image's bytes do not depend on its batch. The lensed
source's magnification (total lensed flux / unlensed flux) is measured on a separate grid around
the lens that covers all its images, whatever the cutout size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from caustics.light.func import k_lenstronomy
from scipy import ndimage

from darklens.simulate.func.grid import (
    bin_supersampled,
    padded_flat,
    pixel_grid_arcsec,
    supersampled_grid_arcsec,
)
from darklens.simulate.func.profiles import (
    arc_unit_norm,
    arcs_unit,
    gaussian_clumps_unit,
    ray_trace,
    ring_unit,
    ring_unit_norm,
    sersic_unit,
    sersic_unit_norm,
    spiral_arm_pattern,
)
from darklens.simulate.func.psf import (
    FWHM_TO_SIGMA,
    convolve_separable,
    gaussian_kernel_1d,
    gaussian_kernel_radius_px,
    gaussian_point_source,
)
from darklens.simulate.func.tensors import TensorRenderer
from darklens.simulate.lensfind.components import Arcs, Clumps, SersicLight
from darklens.simulate.lensfind.config import LensFindConfig
from darklens.simulate.lensfind.sampling import LensFindParams

# Pixels × images per tensor pass: ~1 MB float32 tensors stay in cache on a CPU (as the
# substructure renderer's [64, 64×64] passes); accelerators take far larger passes.
_CPU_CHUNK_PIXELS = 64 * 4096
_ACCELERATOR_CHUNK_PIXELS = 1 << 26
# Magnification grid: MAGNIFICATION_GRID² cells spanning ±(1.25 (θ_E + |β|) + 8 R_major) about
# the lens, which holds every image and the source's tails (a Sérsic n ≤ 1.5 has > 99.8 % of its
# flux within 8 R_e). When the source's smallest scale (minor half-light radius, smallest clump)
# spans fewer than MAG_CELLS_PER_SCALE cells, cells brighter than MAG_REFINE_THRESHOLD × the
# brightest, and their neighbours, are resampled up to MAG_MAX_REFINE² times: sources down to
# 0.01″ across keep μ within ~1 % (tested against lenstronomy) for a fraction of a uniformly fine
# grid's cost.
MAGNIFICATION_GRID = 96
MAG_CELLS_PER_SCALE = 4.0
MAG_MAX_REFINE = 8
MAG_REFINE_THRESHOLD = 1e-3
_MAG_EXTENT_SCALE = 1.25
_MAG_EXTENT_RADII = 8.0


def _no_clumps(slots: int, n_bands: int) -> Clumps:
    """An empty clump set (for images without clumps among ones with them): no weight, no flux."""
    return Clumps(
        np.zeros(slots), np.zeros(slots), np.ones(slots), np.zeros(slots), np.full(n_bands, np.inf)
    )


def _smallest_scale(p: LensFindParams) -> float:
    """The source's smallest length (arcsec): its minor-axis half-light radius or a clump's σ."""
    scale = p.source.r_sersic * math.sqrt(p.source.q)
    if p.source_clumps is not None:
        used = p.source_clumps.weight > 0
        scale = min(scale, float(np.min(p.source_clumps.sigma[used])))
    return scale


@dataclass
class RenderedBatch:
    """Noiseless images [B, bands, H, W] (e-/s per pixel), the lensed-source-only images (zero
    for non-lenses) and the source magnification [B] (NaN for non-lenses)."""

    models: np.ndarray
    source_models: np.ndarray
    magnification: np.ndarray


def _signature(p: LensFindParams) -> tuple[bool, ...]:
    parts = (
        p.deflector,
        p.source_clumps,
        p.companion,
        p.disc,
        p.arms,
        p.ring,
        p.clumps,
        p.arcs,
        p.stars,
    )
    return tuple(part is not None for part in parts)


class LensFindRenderer(TensorRenderer):
    """Noiseless multi-band images for batches of :class:`LensFindParams` (one config, device)."""

    def __init__(
        self,
        config: LensFindConfig,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, device, dtype)
        inst = config.instrument
        n, s, pix = inst.num_pix, inst.supersampling, inst.pixel_scale_arcsec
        self.num_pix, self.n_bands, self.supersampling = n, len(inst.bands), s
        self.pixel_area = pix**2
        self.zero_points = np.array([b.magnitude_zero_point for b in inst.bands])
        fine_x, fine_y = supersampled_grid_arcsec(n, pix, s)
        self._fine = [self._tensor(padded_flat(v))[None, :] for v in (fine_x, fine_y)]
        coarse_x, coarse_y = pixel_grid_arcsec(n, pix)
        self._coarse = [self._tensor(padded_flat(v))[None, None, :] for v in (coarse_x, coarse_y)]
        unit_axis = (np.arange(MAGNIFICATION_GRID) + 0.5) / MAGNIFICATION_GRID * 2.0 - 1.0
        unit_y, unit_x = np.meshgrid(unit_axis, unit_axis, indexing="ij")
        self._unit = [self._tensor(v.ravel())[None, :] for v in (unit_x, unit_y)]
        self.kernel_radius = max(
            gaussian_kernel_radius_px(b.seeing_fwhm_range_arcsec[1], pix, inst.psf_truncation_sigma)
            for b in inst.bands
        )
        budget = _CPU_CHUNK_PIXELS if self.device.type == "cpu" else _ACCELERATOR_CHUNK_PIXELS
        self.chunk = max(1, budget // self._fine[0].shape[1])

    def flux_e_per_s(self, magnitudes: np.ndarray) -> np.ndarray:
        """Band fluxes (e-/s) of AB magnitudes [..., bands]; an infinite magnitude gives 0."""
        return 10.0 ** (-0.4 * (np.asarray(magnitudes) - self.zero_points))

    def _sersic(self, lights: Sequence[SersicLight], area: float) -> dict[str, torch.Tensor]:
        r = np.array([c.r_sersic for c in lights])
        n = np.array([c.n for c in lights])
        q = np.array([c.q for c in lights])
        return {
            "x": self._column([c.x for c in lights]),
            "y": self._column([c.y for c in lights]),
            "q": self._column(q),
            "phi": self._column([c.phi for c in lights]),
            "n": self._column(n),
            "r_major": self._column(r / np.sqrt(q)),
            "norm": self._column(sersic_unit_norm(r, n) * area),
            "k": self._column(k_lenstronomy(n)),
        }

    def _lens(self, chosen: Sequence[LensFindParams]) -> dict[str, torch.Tensor]:
        lenses = [p.deflector for p in chosen]
        names = ("x", "y", "q", "phi", "theta_e", "gamma1", "gamma2")
        return {name: self._column([getattr(d, name) for d in lenses]) for name in names}

    # -- rendering -----------------------------------------------------------------------------
    def render(
        self, params: Sequence[LensFindParams], with_magnification: bool = True
    ) -> RenderedBatch:
        """Noiseless images, source-only images and magnifications (NaN unless
        ``with_magnification``) for a batch of images."""
        shape = (len(params), self.n_bands, self.num_pix, self.num_pix)
        models = np.zeros(shape, dtype=np.float32)
        sources = np.zeros(shape, dtype=np.float32)
        magnification = np.full(len(params), np.nan)
        groups: dict[tuple[bool, ...], list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault(_signature(p), []).append(i)
        for members in groups.values():
            for start in range(0, len(members), self.chunk):
                idx = members[start : start + self.chunk]
                chosen = [params[i] for i in idx]
                images = self._render_chunk(chosen)
                models[idx] = images[:, : self.n_bands]
                if chosen[0].deflector is not None:
                    sources[idx] = images[:, self.n_bands :]
                    if with_magnification:
                        magnification[idx] = self._magnification(chosen)
        return RenderedBatch(models, sources, magnification)

    def _render_chunk(self, chosen: Sequence[LensFindParams]) -> np.ndarray:
        """[b, bands (+ bands of source-only light for lenses), H, W] for images of one group."""
        x, y = self._fine
        total = None
        for unit, magnitudes in self._components(chosen, x, y):
            flux = self._tensor(self.flux_e_per_s(magnitudes))
            term = flux[:, :, None] * unit[:, None, :]
            total = term if total is None else total + term
        if chosen[0].deflector is not None:
            beta_x, beta_y = ray_trace(self._lens(chosen), x, y)
            source_image = self._source_light(chosen, beta_x, beta_y)
            total = torch.cat([total + source_image, source_image], dim=1)
        images = convolve_separable(self._bin(total), self._kernels(chosen, total.shape[1]))
        if chosen[0].stars is not None:
            images[:, : self.n_bands] += self._stars(chosen)
        return images.cpu().numpy()

    def _components(self, chosen: Sequence[LensFindParams], x: torch.Tensor, y: torch.Tensor):
        """(unit-flux profile [b, P], magnitudes [b, bands]) of every unlensed component."""
        first = chosen[0]
        galaxy = self._sersic([p.galaxy for p in chosen], self.pixel_area)
        yield sersic_unit(galaxy, x, y), [p.galaxy.magnitudes for p in chosen]
        if first.companion is not None:
            companion = self._sersic([p.companion for p in chosen], self.pixel_area)
            yield sersic_unit(companion, x, y), [p.companion.magnitudes for p in chosen]
        if first.disc is not None:
            disc = self._sersic([p.disc for p in chosen], self.pixel_area)
            unit = sersic_unit(disc, x, y)
            yield unit, [p.disc.magnitudes for p in chosen]
            if first.arms is not None:
                pattern = spiral_arm_pattern(disc, self._arms(chosen), x, y)
                yield unit * pattern, [p.arms.magnitudes for p in chosen]
        if first.ring is not None:
            yield self._ring_unit(chosen, x, y), [p.ring.magnitudes for p in chosen]
        if first.clumps is not None:
            clumps = [p.clumps for p in chosen]
            yield self._clumps_unit(clumps, x, y), [c.magnitudes for c in clumps]
        if first.arcs is not None:
            arcs = [p.arcs for p in chosen]
            yield arcs_unit(self._arcs(arcs), x, y), [a.magnitudes for a in arcs]

    def _source_light(self, chosen, beta_x: torch.Tensor, beta_y: torch.Tensor) -> torch.Tensor:
        """Lensed source light [b, bands, P] at the ray-shot sub-pixel positions; sub-pixels of
        sources smaller than a sub-pixel are resampled finer (:meth:`_resample_small_sources`).
        The Sérsic and its clumps share one colour, so one unit profile serves every band."""
        unit = self._source_unit(chosen, beta_x, beta_y)
        unit = self._resample_small_sources(chosen, unit)
        flux = self._tensor(self.flux_e_per_s([p.source_magnitudes() for p in chosen]))
        return flux[:, :, None] * (unit * self.pixel_area)[:, None, :]

    def _resample_small_sources(self, chosen, unit: torch.Tensor) -> torch.Tensor:
        """Sub-pixels of a lensed source whose smallest scale is below a sub-pixel, brighter than
        MAG_REFINE_THRESHOLD × its brightest (and their neighbours), get the mean of R×R
        ray-shot samples (R ≤ MAG_MAX_REFINE): one sample per 0.05″ would misplace the flux of a
        0.01″ source by a factor of 2 or more. The samples of several images are traced
        together (:meth:`_trace_sources`)."""
        inst = self.config.instrument
        step = inst.pixel_scale_arcsec / inst.supersampling
        side = self.num_pix * self.supersampling
        fine_x, fine_y = (v[0, : side * side].cpu().numpy().astype(np.float64) for v in self._fine)
        pending = []
        for j, p in enumerate(chosen):
            refine = min(MAG_MAX_REFINE, math.ceil(2.0 * step / _smallest_scale(p)))
            if refine <= 1:
                continue
            grid = unit[j, : side * side].cpu().numpy().astype(np.float64).reshape(side, side)
            if not grid.max() > 0:
                continue
            bright = ndimage.binary_dilation(
                grid > MAG_REFINE_THRESHOLD * grid.max(), structure=np.ones((3, 3), dtype=bool)
            ).ravel()
            offsets = ((np.arange(refine) + 0.5) / refine - 0.5) * step
            oy, ox = np.meshgrid(offsets, offsets, indexing="ij")
            sub_x = (fine_x[bright][:, None] + ox.ravel()[None, :]).ravel()
            sub_y = (fine_y[bright][:, None] + oy.ravel()[None, :]).ravel()
            pending.append((j, sub_x, sub_y, (refine, bright)))
        if not pending:
            return unit
        out = unit.clone()
        for j, samples, (refine, bright) in self._trace_sources(chosen, pending):
            means = samples.reshape(-1, refine * refine).mean(dim=1)
            index = torch.as_tensor(np.flatnonzero(bright), device=unit.device)
            out[j].index_copy_(0, index, means)
        return out

    def _trace_sources(self, chosen, pending):
        """Unit-flux source brightness at image-plane points, for ``pending`` items
        ``(j, x, y, tag)`` of systems ``chosen[j]``: yields ``(j, samples [len(x)], tag)``.
        Items of similar length share one ray trace, each row padded to a multiple of 64 (so a
        system's values do not depend on the others'): an accelerator gets a few large passes
        instead of one tiny pass per system."""
        pending = sorted(pending, key=lambda item: item[1].size)
        budget = self.chunk * self._fine[0].shape[1]
        start = 0
        while start < len(pending):
            longest = padded_flat(pending[start][1]).size
            stop = start + 1
            while stop < len(pending):
                size = padded_flat(pending[stop][1]).size
                if size * (stop - start + 1) > budget or size > 2 * longest:
                    break
                longest = size
                stop += 1
            part = pending[start:stop]
            xs = np.zeros((len(part), longest))
            ys = np.zeros((len(part), longest))
            for k, (_, x, y, _) in enumerate(part):
                xs[k, : x.size], ys[k, : y.size] = x, y
            systems = [chosen[j] for j, *_ in part]
            beta_x, beta_y = ray_trace(self._lens(systems), self._tensor(xs), self._tensor(ys))
            values = self._source_unit(systems, beta_x, beta_y)
            for k, (j, x, _, tag) in enumerate(part):
                yield j, values[k, : x.size], tag
            start = stop

    def _clumps_unit(
        self, clumps: Sequence[Clumps], x: torch.Tensor, y: torch.Tensor, area: float | None = None
    ) -> torch.Tensor:
        names = ("x", "y", "sigma", "weight")
        params = {
            name: self._tensor(np.stack([getattr(c, name) for c in clumps])) for name in names
        }
        params["sigma"] = torch.where(params["weight"] > 0, params["sigma"], 1.0)
        area = self.pixel_area if area is None else area
        return gaussian_clumps_unit(params, x, y) * area

    def _arcs(self, arcs: Sequence[Arcs]) -> dict[str, torch.Tensor]:
        names = ("x", "y", "q", "phi", "radius", "width", "angle", "extent", "weight")
        values = {name: np.stack([getattr(a, name) for a in arcs]) for name in names}
        empty = values["weight"] == 0
        for name, filler in (("radius", 1.0), ("width", 1.0), ("extent", 1.0)):
            values[name] = np.where(empty, filler, values[name])
        values["norm"] = (
            arc_unit_norm(values["radius"], values["width"], values["q"], values["extent"])
            * self.pixel_area
        )
        return {name: self._tensor(value) for name, value in values.items()}

    def _arms(self, chosen: Sequence[LensFindParams]) -> dict[str, torch.Tensor]:
        arms = [p.arms for p in chosen]
        return {
            "n_arms": self._column([a.n_arms for a in arms]),
            "pitch": self._column([a.pitch_rad for a in arms]),
            "phase": self._column([a.phase_rad for a in arms]),
        }

    def _ring_unit(self, chosen, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rings = [p.ring for p in chosen]
        radius = np.array([r.radius for r in rings])
        width = np.array([r.width for r in rings])
        q = np.array([r.q for r in rings])
        params = {
            "x": self._column([r.x for r in rings]),
            "y": self._column([r.y for r in rings]),
            "q": self._column(q),
            "phi": self._column([r.phi for r in rings]),
            "radius": self._column(radius),
            "width": self._column(width),
            "norm": self._column(ring_unit_norm(radius, width, q) * self.pixel_area),
        }
        return ring_unit(params, x, y)

    def _bin(self, fine: torch.Tensor) -> torch.Tensor:
        return bin_supersampled(fine, self.num_pix, self.supersampling)

    def _kernels(self, chosen: Sequence[LensFindParams], channels: int) -> torch.Tensor:
        inst = self.config.instrument
        kernels = np.array(
            [
                [
                    gaussian_kernel_1d(
                        fwhm, inst.pixel_scale_arcsec, inst.psf_truncation_sigma, self.kernel_radius
                    )
                    for fwhm in p.seeing_fwhm_arcsec
                ]
                for p in chosen
            ]
        )
        reps = channels // self.n_bands
        return self._tensor(np.concatenate([kernels] * reps, axis=1))

    def _stars(self, chosen: Sequence[LensFindParams]) -> torch.Tensor:
        x, y = self._coarse
        fwhm = np.array([p.seeing_fwhm_arcsec for p in chosen])
        sigma = self._tensor(fwhm * FWHM_TO_SIGMA)[:, :, None]
        flux = self.flux_e_per_s(np.stack([p.stars.magnitudes for p in chosen]))  # [b, K, bands]
        flux = self._tensor(flux * self.pixel_area)
        xs = self._tensor(np.stack([p.stars.x for p in chosen]))
        ys = self._tensor(np.stack([p.stars.y for p in chosen]))
        shape = (len(chosen), self.n_bands, x.shape[-1])
        total = torch.zeros(shape, dtype=self.dtype, device=self.device)
        for k in range(xs.shape[1]):
            total.add_(
                gaussian_point_source(
                    flux[:, k, :, None], xs[:, k, None, None], ys[:, k, None, None], sigma, x, y
                )
            )
        n = self.num_pix
        return total[..., : n * n].reshape(len(chosen), self.n_bands, n, n)

    def magnification(self, params: Sequence[LensFindParams]) -> np.ndarray:
        """Total lensed flux / unlensed flux of each image's source (Sérsic and clumps, weighted
        by their reference-band fluxes), over a grid holding all its images."""
        step = max(1, self.chunk * self._fine[0].shape[1] // MAGNIFICATION_GRID**2)
        parts = [self._magnification(params[i : i + step]) for i in range(0, len(params), step)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _magnification(self, chosen: Sequence[LensFindParams]) -> np.ndarray:
        return self._refined_fluxes(chosen, *self._coarse_magnification(chosen))

    def _coarse_magnification(self, chosen: Sequence[LensFindParams]):
        """(unit-flux source samples [b, n²] on each system's magnification grid, the grid's cell
        centres (x, y [b, n²]), its full widths [b]): the grid holds every image of the source."""
        lens = self._lens(chosen)
        offset = np.array(
            [np.hypot(p.source.x - p.deflector.x, p.source.y - p.deflector.y) for p in chosen]
        )
        theta_e = np.array([p.deflector.theta_e for p in chosen])
        r_major = np.array([p.source.r_sersic / np.sqrt(p.source.q) for p in chosen])
        half = _MAG_EXTENT_SCALE * (theta_e + offset) + _MAG_EXTENT_RADII * r_major
        half_t = self._column(half)
        ux, uy = self._unit
        gx, gy = lens["x"] + half_t * ux, lens["y"] + half_t * uy
        beta_x, beta_y = ray_trace(lens, gx, gy)
        coarse = self._source_unit(chosen, beta_x, beta_y).cpu().numpy().astype(np.float64)
        centres = (gx.cpu().numpy().astype(np.float64), gy.cpu().numpy().astype(np.float64))
        return coarse, centres, 2 * half

    def _refined_fluxes(self, chosen, coarse, centres, widths) -> np.ndarray:
        """Lensed flux of each unit-flux source from its coarse samples [b, n²] at the cell
        centres (x, y [b, n²]) of grids ``widths`` wide: cells brighter than
        MAG_REFINE_THRESHOLD × the brightest, and their neighbours, are resampled R×R times when
        the source is small for a cell (points traced together: :meth:`_trace_sources`)."""
        n = MAGNIFICATION_GRID
        totals = np.zeros(len(chosen))
        pending: list[tuple[int, np.ndarray, np.ndarray, float]] = []
        for j, p in enumerate(chosen):
            cell = widths[j] / n
            grid = coarse[j].reshape(n, n)
            refine = min(MAG_MAX_REFINE, math.ceil(MAG_CELLS_PER_SCALE * cell / _smallest_scale(p)))
            if refine <= 1:
                totals[j] = float(np.sum(grid)) * cell**2
                continue
            bright = ndimage.binary_dilation(
                grid > MAG_REFINE_THRESHOLD * grid.max(), structure=np.ones((3, 3), dtype=bool)
            )
            totals[j] = float(np.sum(grid[~bright])) * cell**2
            if not bright.any():
                continue
            offsets = ((np.arange(refine) + 0.5) / refine - 0.5) * cell
            oy, ox = np.meshgrid(offsets, offsets, indexing="ij")
            fine_x = (centres[0][j].reshape(n, n)[bright][:, None] + ox.ravel()[None, :]).ravel()
            fine_y = (centres[1][j].reshape(n, n)[bright][:, None] + oy.ravel()[None, :]).ravel()
            pending.append((j, fine_x, fine_y, (cell / refine) ** 2))
        for j, samples, area in self._trace_sources(chosen, pending):
            totals[j] += float(np.sum(samples.cpu().numpy().astype(np.float64))) * area
        return totals

    def _source_unit(self, chosen, beta_x: torch.Tensor, beta_y: torch.Tensor) -> torch.Tensor:
        """Unit-flux brightness of each source (Sérsic and clumps in proportion to their
        reference-band fluxes) at source-plane positions [b, P]."""
        sources = [p.source for p in chosen]
        brightness = sersic_unit(self._sersic(sources, area=1.0), beta_x, beta_y)
        if all(p.source_clumps is None for p in chosen):
            return brightness
        ref = self.config.instrument.reference_index
        empty = _no_clumps(self.config.source.max_clumps, self.n_bands)
        clumps = [p.source_clumps or empty for p in chosen]
        sersic_flux = self.flux_e_per_s(np.stack([s.magnitudes for s in sources]))[:, ref]
        clump_flux = self.flux_e_per_s(np.stack([c.magnitudes for c in clumps]))[:, ref]
        share = self._column(clump_flux / (clump_flux + sersic_flux))
        unit = self._clumps_unit(clumps, beta_x, beta_y, area=1.0)
        return (1.0 - share) * brightness + share * unit

    def kernel_l2_squared(self, chosen: Sequence[LensFindParams]) -> np.ndarray:
        """Σ k² of each image's 2-D PSF kernel per band [b, bands] (a separable kernel's is the
        1-D kernel's Σ k², squared)."""
        kernels = self._kernels(chosen, self.n_bands).cpu().numpy().astype(np.float64)
        return np.sum(kernels**2, axis=-1) ** 2
