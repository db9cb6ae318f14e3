"""Batched, noiseless multi-band rendering of lenses and look-alikes with caustics' functions.

Per image: surface brightness of every component (unit total flux) on the supersampled grid,
the lensed source ray-shot through SIE + external shear, combined per band with the band's flux
(e-/s from the AB magnitude and the band's zero point), averaged to pixels, convolved with the
image's own Gaussian PSF per band (lenstronomy's truncated, edge-extended kernel), then stars
added as PSF-shaped point sources. Values are e-/s per pixel.

Images are rendered in groups sharing the same components (plain galaxy, lens, lens with a
star, spiral, ...) and in cache-sized chunks; all operations are elementwise on per-image pixel
vectors padded to a multiple of 64, so an image's bytes do not depend on its batch. The lensed
source's magnification (total lensed flux / unlensed flux) is measured on a separate grid around
the lens that covers all its images, whatever the cutout size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from caustics.light.func import k_lenstronomy

from darklens.simulate.func.grid import (
    bin_supersampled,
    padded_flat,
    pixel_grid_arcsec,
    supersampled_grid_arcsec,
)
from darklens.simulate.func.profiles import (
    ray_trace,
    ring_unit,
    ring_unit_norm,
    sersic_unit,
    sersic_unit_norm,
    spiral_modulation,
)
from darklens.simulate.func.psf import (
    FWHM_TO_SIGMA,
    convolve_separable,
    gaussian_kernel_1d,
    gaussian_kernel_radius_px,
    gaussian_point_source,
)
from darklens.simulate.func.tensors import TensorRenderer
from darklens.simulate.lensfind.config import LensFindConfig
from darklens.simulate.lensfind.sampling import LensFindParams, SersicLight

# Pixels × images per tensor pass: ~1 MB float32 tensors stay in cache on a CPU (as the
# substructure renderer's [64, 64×64] passes); accelerators take far larger passes.
_CPU_CHUNK_PIXELS = 64 * 4096
_ACCELERATOR_CHUNK_PIXELS = 1 << 26
# Magnification grid: MAGNIFICATION_GRID² points spanning ±(1.25 (θ_E + |β|) + 8 R_major) about
# the lens, which holds every image and the source's tails (a Sérsic n ≤ 1.5 has > 99.8 % of its
# flux within 8 R_e).
MAGNIFICATION_GRID = 192
_MAG_EXTENT_SCALE = 1.25
_MAG_EXTENT_RADII = 8.0


@dataclass
class RenderedBatch:
    """Noiseless images [B, bands, H, W] (e-/s per pixel), the lensed-source-only images (zero
    for non-lenses) and the source magnification [B] (NaN for non-lenses)."""

    models: np.ndarray
    source_models: np.ndarray
    magnification: np.ndarray


def _signature(p: LensFindParams) -> tuple[bool, ...]:
    parts = (p.deflector, p.companion, p.disc, p.arms, p.ring, p.stars)
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
    def render(self, params: Sequence[LensFindParams]) -> RenderedBatch:
        """Noiseless images, source-only images and magnifications for a batch of images."""
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
                    magnification[idx] = self._magnification(chosen)
        return RenderedBatch(models, sources, magnification)

    def _render_chunk(self, chosen: Sequence[LensFindParams]) -> np.ndarray:
        """[b, bands (+ bands of source-only light for lenses), H, W] for images of one group."""
        x, y = self._fine
        first = chosen[0]
        components: list[tuple[torch.Tensor, list[np.ndarray]]] = []
        galaxy = self._sersic([p.galaxy for p in chosen], self.pixel_area)
        components.append((sersic_unit(galaxy, x, y), [p.galaxy.magnitudes for p in chosen]))
        source_image = None
        if first.deflector is not None:
            beta_x, beta_y = ray_trace(self._lens(chosen), x, y)
            source = self._sersic([p.source for p in chosen], self.pixel_area)
            flux = self._tensor(self.flux_e_per_s([p.source.magnitudes for p in chosen]))
            source_image = flux[:, :, None] * sersic_unit(source, beta_x, beta_y)[:, None, :]
        if first.companion is not None:
            companion = self._sersic([p.companion for p in chosen], self.pixel_area)
            components.append(
                (sersic_unit(companion, x, y), [p.companion.magnitudes for p in chosen])
            )
        if first.disc is not None:
            disc = self._sersic([p.disc for p in chosen], self.pixel_area)
            unit = sersic_unit(disc, x, y)
            if first.arms is not None:
                unit = unit * spiral_modulation(disc, self._arms(chosen), x, y)
            components.append((unit, [p.disc.magnitudes for p in chosen]))
        if first.ring is not None:
            components.append((self._ring_unit(chosen, x, y), [p.ring.magnitudes for p in chosen]))
        total = None
        for unit, magnitudes in components:
            flux = self._tensor(self.flux_e_per_s(magnitudes))
            term = flux[:, :, None] * unit[:, None, :]
            total = term if total is None else total + term
        if source_image is not None:
            total = torch.cat([total + source_image, source_image], dim=1)
        images = convolve_separable(self._bin(total), self._kernels(chosen, total.shape[1]))
        if first.stars is not None:
            images[:, : self.n_bands] += self._stars(chosen)
        return images.cpu().numpy()

    def _arms(self, chosen: Sequence[LensFindParams]) -> dict[str, torch.Tensor]:
        arms = [p.arms for p in chosen]
        return {
            "amplitude": self._column([a.amplitude for a in arms]),
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

    def _magnification(self, chosen: Sequence[LensFindParams]) -> np.ndarray:
        """Total lensed flux of the unit-flux source over a grid holding all its images."""
        lens = self._lens(chosen)
        sources = [p.source for p in chosen]
        source = self._sersic(sources, area=1.0)
        offset = np.array(
            [
                np.hypot(s.x - p.deflector.x, s.y - p.deflector.y)
                for s, p in zip(sources, chosen, strict=True)
            ]
        )
        theta_e = np.array([p.deflector.theta_e for p in chosen])
        r_major = np.array([s.r_sersic / np.sqrt(s.q) for s in sources])
        half = _MAG_EXTENT_SCALE * (theta_e + offset) + _MAG_EXTENT_RADII * r_major
        half_t = self._column(half)
        ux, uy = self._unit
        beta_x, beta_y = ray_trace(lens, lens["x"] + half_t * ux, lens["y"] + half_t * uy)
        brightness = sersic_unit(source, beta_x, beta_y).cpu().numpy().astype(np.float64)
        cell_area = (2.0 * half / MAGNIFICATION_GRID) ** 2
        return np.array(
            [area * np.sum(row) for area, row in zip(cell_area, brightness, strict=True)]
        )
