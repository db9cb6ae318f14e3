"""Batched, noiseless multi-epoch rendering of lensed transients and their look-alikes.

Static light (lens or lone galaxy, line-of-sight companion, the lensed source or supernova host
ray-traced through SIE + shear) is rendered once per object with the lens-finding renderer's
caustics path (supersampled, unit-flux profiles scaled by band fluxes, binned to pixels), then
convolved with every epoch's own Gaussian PSF per band; point sources (supernova images, stars)
are added per epoch as PSF-shaped sources with that epoch's flux. Values are e-/s per pixel.

Absent components are rendered with zero flux, so every object takes the same code path and all
operations are elementwise on per-object tensors: an object's bytes do not depend on its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from darklens.simulate.func.grid import bin_supersampled
from darklens.simulate.func.profiles import ray_trace, sersic_unit
from darklens.simulate.func.psf import (
    FWHM_TO_SIGMA,
    convolve_separable,
    gaussian_kernel_1d,
    gaussian_point_source,
)
from darklens.simulate.lensfind.components import Deflector, SersicLight
from darklens.simulate.lensfind.render import LensFindRenderer
from darklens.simulate.transients.config import TransientsConfig
from darklens.simulate.transients.sampling import TransientParams, point_sources

# Stand-ins for absent components: valid profiles that get zero flux.
_NO_LIGHT = SersicLight(0.0, 0.0, 1.0, 1.0, 1.0, 0.0, np.array([np.inf]))
_NO_LENS = Deflector(0.0, 0.0, 1.0, 0.8, 0.0, 0.0, 0.0)
# Epoch-image values per tensor pass on a CPU (objects × epochs × bands × pixels).
_CPU_EPOCH_VALUES = 1 << 21


class TransientRenderer(LensFindRenderer):
    """Noiseless epoch images [B, T, bands, H, W] for batches of :class:`TransientParams`.

    Shares the lens-finding renderer's grids and profile helpers (the survey config has the same
    grid, band and PSF fields); ``config`` is the :class:`TransientsConfig`.
    """

    def __init__(
        self,
        config: TransientsConfig,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, device=device, dtype=dtype)  # type: ignore[arg-type]
        inst = config.instrument
        self.times_days = np.asarray(inst.epoch_times_days(), dtype=np.float64)
        self.n_epochs = inst.n_epochs
        values_per_object = self.n_epochs * self.n_bands * self._coarse[0].shape[-1]
        self.chunk = max(1, _CPU_EPOCH_VALUES // values_per_object)

    def render(self, params: Sequence[TransientParams]) -> np.ndarray:  # type: ignore[override]
        """Noiseless epoch images (e-/s per pixel), float32 [B, T, bands, H, W]."""
        n = self.num_pix
        out = np.zeros((len(params), self.n_epochs, self.n_bands, n, n), dtype=np.float32)
        for start in range(0, len(params), self.chunk):
            chosen = params[start : start + self.chunk]
            out[start : start + len(chosen)] = self._render_chunk(chosen)
        return out

    def _lights(self, lights: Sequence[SersicLight | None]) -> tuple[dict, torch.Tensor]:
        """Profile parameters and band fluxes [b, bands] (zero for absent lights)."""
        present = [light if light is not None else _NO_LIGHT for light in lights]
        flux = np.stack(
            [self.flux_e_per_s(light.magnitudes) * np.ones(self.n_bands) for light in present]
        )
        return self._sersic(present, self.pixel_area), self._tensor(flux)

    def _render_chunk(self, chosen: Sequence[TransientParams]) -> np.ndarray:
        x, y = self._fine
        total = None
        for lights in ([p.galaxy for p in chosen], [p.companion for p in chosen]):
            profile, flux = self._lights(lights)
            term = flux[:, :, None] * sersic_unit(profile, x, y)[:, None, :]
            total = term if total is None else total + term
        lens = self._lens_params([p.deflector for p in chosen])
        beta_x, beta_y = ray_trace(lens, x, y)
        profile, flux = self._lights([p.lensed for p in chosen])
        total = total + flux[:, :, None] * sersic_unit(profile, beta_x, beta_y)[:, None, :]
        static = bin_supersampled(total, self.num_pix, self.supersampling)  # [b, bands, H, W]
        b, n = len(chosen), self.num_pix
        epochs = static[:, None].expand(b, self.n_epochs, self.n_bands, n, n)
        epochs = epochs.reshape(b * self.n_epochs, self.n_bands, n, n)
        images = convolve_separable(epochs, self._epoch_kernels(chosen))
        images = images.reshape(b, self.n_epochs, self.n_bands, n, n)
        return (images + self._points(chosen)).cpu().numpy()

    def _lens_params(self, deflectors: Sequence[Deflector | None]) -> dict[str, torch.Tensor]:
        lenses = [d if d is not None else _NO_LENS for d in deflectors]
        names = ("x", "y", "q", "phi", "theta_e", "gamma1", "gamma2")
        return {name: self._column([getattr(d, name) for d in lenses]) for name in names}

    def _epoch_kernels(self, chosen: Sequence[TransientParams]) -> torch.Tensor:
        """1-D PSF kernels [b·T, bands, K] from each epoch's seeing."""
        inst = self.config.instrument
        kernels = [
            gaussian_kernel_1d(
                fwhm, inst.pixel_scale_arcsec, inst.psf_truncation_sigma, self.kernel_radius
            )
            for p in chosen
            for fwhm in p.seeing_fwhm_arcsec.ravel()
        ]
        shape = (len(chosen) * self.n_epochs, self.n_bands, -1)
        return self._tensor(np.array(kernels).reshape(shape))

    def _points(self, chosen: Sequence[TransientParams]) -> torch.Tensor:
        """PSF-shaped point sources per epoch and band: [b, T, bands, H, W]."""
        x, y = self._coarse  # [1, 1, P]
        sources = [point_sources(p, self.times_days, self.zero_points) for p in chosen]
        slots = max(1, max(len(xs) for xs, _, _ in sources))
        b, channels = len(chosen), self.n_epochs * self.n_bands
        xs, ys = np.zeros((b, slots)), np.zeros((b, slots))
        flux = np.zeros((b, slots, channels))
        for j, (px, py, pf) in enumerate(sources):
            xs[j, : len(px)], ys[j, : len(py)] = px, py
            flux[j, : len(px)] = pf.reshape(len(px), channels)
        fwhm = np.stack([p.seeing_fwhm_arcsec.ravel() for p in chosen])
        sigma = self._tensor(fwhm * FWHM_TO_SIGMA)[:, :, None]
        flux_t = self._tensor(flux * self.pixel_area)
        xs_t, ys_t = self._tensor(xs), self._tensor(ys)
        total = torch.zeros((b, channels, x.shape[-1]), dtype=self.dtype, device=self.device)
        for k in range(slots):
            total.add_(
                gaussian_point_source(
                    flux_t[:, k, :, None],
                    xs_t[:, k, None, None],
                    ys_t[:, k, None, None],
                    sigma,
                    x,
                    y,
                )
            )
        n = self.num_pix
        return total[..., : n * n].reshape(b, self.n_epochs, self.n_bands, n, n)
