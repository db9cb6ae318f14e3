"""The substructure renderer's general path: images rendered from per-image
:class:`~darklens.simulate.substructure.views.ImageView` settings.

Per image: the pixel grid at its own pixel scale; β = θ − α_SIE(θ) − α_shear(θ) − Σ α_point(θ)
with its own effective Einstein radii and shear; the source's surface brightness at β, either an
elliptical Sérsic or a bank galaxy interpolated as lenstronomy's ``INTERPOL``
(:func:`darklens.simulate.func.interpolate.interpolate_images`); the lens light's Sérsics at θ;
all times the pixel area (lenstronomy's flux per pixel, no supersampling, as DeepLenseSim), then
convolved with the image's own Gaussian PSF (lenstronomy's truncated, edge-extended kernel).

Images are grouped by number of point masses, source kind and number of lens-light components;
every operation is elementwise per pixel or a per-image convolution whose extra zero taps add
exact zeros, so an image's bytes do not depend on its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from caustics.lenses.func import (
    reduced_deflection_angle_external_shear,
    reduced_deflection_angle_sie,
)
from caustics.light.func import brightness_sersic, k_lenstronomy
from lenstronomy.Util.param_util import ellipticity2phi_q

from darklens.simulate.func.grid import padded_flat, pixel_grid_arcsec
from darklens.simulate.func.interpolate import interpolate_images
from darklens.simulate.func.profiles import SIE_CORE_ARCSEC, subtract_point_deflections
from darklens.simulate.func.psf import (
    convolve_separable,
    gaussian_kernel_1d,
    gaussian_kernel_radius_px,
)
from darklens.simulate.func.tensors import TensorRenderer
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.sampling import ImageParams
from darklens.simulate.substructure.views import ImageView, LightComponent, image_bank, uses_bank


def _group_key(p: ImageParams) -> tuple[int, int, str, int]:
    view = p.view
    assert view is not None
    return view.num_pix, len(p.point_x), view.source_kind, len(view.lens_light)


class ViewRenderer(TensorRenderer):
    """Noiseless images (float32, flux per pixel) from per-image views, each on its own grid."""

    def __init__(
        self,
        config: SubstructureConfig,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        chunk: int = 64,
    ) -> None:
        super().__init__(config, device, dtype)
        self.chunk = chunk
        self.num_pix = config.instrument.num_pix
        self._unit_grids: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._bank: dict[str, torch.Tensor] | None = None
        if uses_bank(config):  # a bad bank fails here, naming its file, before any work
            self._bank_tensors()

    def _bank_tensors(self) -> dict[str, torch.Tensor]:
        if self._bank is None:
            flat, offsets, heights, widths = image_bank(self.config).packed()
            self._bank = {
                "flat": self._tensor(flat),
                "offset": torch.as_tensor(offsets, device=self.device),
                "height": torch.as_tensor(heights, device=self.device),
                "width": torch.as_tensor(widths, device=self.device),
            }
        return self._bank

    def _unit_grid(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel-centre offsets of an n × n grid in pixels, flat and padded: [1, P]."""
        if n not in self._unit_grids:
            x, y = pixel_grid_arcsec(n, 1.0)
            self._unit_grids[n] = (
                self._tensor(padded_flat(x))[None],
                self._tensor(padded_flat(y))[None],
            )
        return self._unit_grids[n]

    def render(self, params: Sequence[ImageParams]) -> list[np.ndarray]:
        """Noiseless images, each on its view's own grid (float32 [n, n])."""
        out: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(params)
        groups: dict[tuple[int, int, str, int], list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault(_group_key(p), []).append(i)
        for group in groups.values():
            for start in range(0, len(group), self.chunk):
                members = group[start : start + self.chunk]
                images = self._render_chunk([params[i] for i in members]).cpu().numpy()
                for i, image in zip(members, images, strict=True):
                    out[i] = image
        return out

    def _render_chunk(self, chosen: Sequence[ImageParams]) -> torch.Tensor:
        views = [p.view for p in chosen]
        n = views[0].num_pix
        pixel = self._column([v.pixel_scale_arcsec for v in views])
        unit_x, unit_y = self._unit_grid(n)
        gx, gy = unit_x * pixel, unit_y * pixel
        beta_x, beta_y = self._ray_trace(chosen, views, gx, gy)
        area = pixel.square()
        source_xy = (self._column([p.source_x for p in chosen]),
                     self._column([p.source_y for p in chosen]))  # fmt: skip
        if views[0].source is not None:
            flux = self._sersic([v.source for v in views], area, *source_xy, beta_x, beta_y)
        else:
            flux = self._bank_light(views, area, *source_xy, beta_x, beta_y)
        zero = torch.zeros_like(pixel)
        for j in range(len(views[0].lens_light)):
            flux = flux + self._sersic([v.lens_light[j] for v in views], area, zero, zero, gx, gy)
        images = flux[:, : n * n].reshape(-1, 1, n, n)
        kernels = self._kernels(views)
        if kernels is not None:
            images = convolve_separable(images, kernels)
        return images[:, 0]

    def _ray_trace(
        self,
        chosen: Sequence[ImageParams],
        views: Sequence[ImageView],
        gx: torch.Tensor,
        gy: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        phi, q = zip(*(ellipticity2phi_q(v.lens_e1, v.lens_e2) for v in views), strict=True)
        zero = torch.zeros((len(views), 1), dtype=self.dtype, device=self.device)
        ax, ay = reduced_deflection_angle_sie(
            zero, zero, self._column(q), self._column(phi),
            self._column([v.einstein_radius_arcsec for v in views]), gx, gy, SIE_CORE_ARCSEC,
        )  # fmt: skip
        sx, sy = reduced_deflection_angle_external_shear(
            zero, zero, self._column([v.gamma1 for v in views]),
            self._column([v.gamma2 for v in views]), gx, gy,
        )  # fmt: skip
        beta_x, beta_y = gx - ax - sx, gy - ay - sy
        if len(chosen[0].point_x):
            scale = np.array([v.point_rein_per_sqrt_msun for v in views])[:, None]
            rein = scale * np.sqrt(np.stack([p.point_mass for p in chosen]))
            subtract_point_deflections(
                beta_x, beta_y, gx, gy, self._tensor(np.stack([p.point_x for p in chosen])),
                self._tensor(np.stack([p.point_y for p in chosen])), self._tensor(rein),
            )  # fmt: skip
        return beta_x, beta_y

    def _sersic(
        self,
        lights: Sequence[LightComponent],
        area: torch.Tensor,
        x0: torch.Tensor,
        y0: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        """Flux per pixel of elliptical Sérsics (caustics' R is the major axis: R / √q)."""
        phi, q = zip(*(ellipticity2phi_q(c.e1, c.e2) for c in lights), strict=True)
        q = np.asarray(q)
        n = self._column([c.n_sersic for c in lights])
        radius = self._column(np.array([c.r_sersic_arcsec for c in lights]) / np.sqrt(q))
        amplitude = self._column([c.amplitude for c in lights]) * area
        return brightness_sersic(
            x0, y0, self._column(q), self._column(phi), n, radius, amplitude, x, y,
            k_lenstronomy(n),
        )  # fmt: skip

    def _bank_light(
        self,
        views: Sequence[ImageView],
        area: torch.Tensor,
        x0: torch.Tensor,
        y0: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
    ) -> torch.Tensor:
        """Flux per pixel of bank galaxies: flux × (pixel / image pixel)² × unit-flux image."""
        bank = self._bank_tensors()
        index = torch.as_tensor([v.bank_index for v in views], device=self.device)[:, None]
        height, width = bank["height"][index], bank["width"][index]
        side = torch.maximum(height, width).to(torch.float64).cpu().numpy()
        image_pixel = np.array([v.bank_box_arcsec for v in views])[:, None] / side
        angle = np.array([v.bank_angle_rad for v in views])[:, None]
        image = {
            "offset": bank["offset"][index],
            "height": height,
            "width": width,
            "x": x0,
            "y": y0,
            "cos": self._tensor(np.cos(angle)),
            "sin": self._tensor(np.sin(angle)),
            "scale": self._tensor(image_pixel),
            "flip": self._column([-1.0 if v.bank_flip else 1.0 for v in views]),
        }
        flux = self._column([v.bank_flux for v in views]) * area / self._tensor(image_pixel**2)
        return flux * interpolate_images(bank["flat"], image, x, y)

    def _kernels(self, views: Sequence[ImageView]) -> torch.Tensor | None:
        """Per-image 1-D PSF kernels [B, 1, K] of one shared length (None: no PSF at all)."""
        truncation = self.config.instrument.psf_truncation_sigma
        blurred = [v for v in views if v.psf_fwhm_arcsec > 0]
        if not blurred:
            return None
        radius = max(
            gaussian_kernel_radius_px(v.psf_fwhm_arcsec, v.pixel_scale_arcsec, truncation)
            for v in blurred
        )
        kernels = np.zeros((len(views), 1, 2 * radius + 1))
        for i, v in enumerate(views):
            # each kernel at its own length, then zero-padded: its weights (and the image's
            # bytes) do not depend on the other images of the batch
            own = np.ones(1)
            if v.psf_fwhm_arcsec > 0:
                own = gaussian_kernel_1d(v.psf_fwhm_arcsec, v.pixel_scale_arcsec, truncation)
            half = len(own) // 2
            kernels[i, 0, radius - half : radius + half + 1] = own
        return self._tensor(kernels)
