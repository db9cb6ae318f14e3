"""Batched, noiseless rendering of substructure lenses with caustics' lensing functions.

Ray shooting: β = θ − α_SIE(θ) − α_shear(θ) − Σ_k α_point,k(θ); the source is an elliptical
Sérsic evaluated at β, times the pixel area (lenstronomy's flux-per-pixel convention), convolved
with the instrument's Gaussian PSF exactly as lenstronomy does it for ``psf_type='GAUSSIAN'``: a
sampled Gaussian truncated at ``psf_truncation_sigma`` and edge pixels extended ("nearest"), applied
as two separable 1-D convolutions.

Configs with per-image settings (``SubstructureConfig.per_image_views``: real-galaxy sources,
lens light, domain randomisation, Model IV's compat lenses) are rendered by the general path of
:mod:`darklens.simulate.substructure.render_views`.

Bitwise reproducibility: each pixel's value is computed by the same sequence of elementwise
operations whatever the batch, and the per-image pixel vector is padded to a multiple of 64 so that
vectorised kernels treat every image alike. Run with one intra-op thread on CPU (the simulation
engine parallelises across processes instead).
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

from darklens.simulate.func.cosmology import point_mass_einstein_radius_arcsec
from darklens.simulate.func.grid import padded_flat, pixel_grid_arcsec
from darklens.simulate.func.profiles import subtract_point_deflections
from darklens.simulate.func.psf import convolve_separable, gaussian_kernel_1d
from darklens.simulate.func.tensors import TensorRenderer
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.physics import deflection_scale, distance_kind
from darklens.simulate.substructure.render_views import ViewRenderer
from darklens.simulate.substructure.sampling import ImageParams, ParamGroup

__all__ = ["SubstructureRenderer", "deflection_scale", "distance_kind", "source_amplitude"]

# Images per tensor pass on the CPU: [64, H·W] float32 tensors stay in cache (measured fastest);
# accelerators take much larger passes.
_CHUNK = 64


def psf_kernel_1d(config: SubstructureConfig) -> np.ndarray | None:
    """Normalised 1-D Gaussian PSF weights in pixels (None when the FWHM is 0)."""
    inst = config.instrument
    if inst.psf_fwhm_arcsec == 0:
        return None
    return gaussian_kernel_1d(
        inst.psf_fwhm_arcsec, inst.pixel_scale_arcsec, inst.psf_truncation_sigma
    )


def source_amplitude(config: SubstructureConfig) -> float:
    """Sérsic amplitude at R_sersic: given, or converted from a magnitude by lenstronomy."""
    src = config.source
    if src.amplitude is not None:
        return float(src.amplitude)
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    inst = config.instrument
    band = {
        "pixel_scale": inst.pixel_scale_arcsec,
        "exposure_time": inst.exposure_time_s,
        "num_exposures": inst.num_exposures,
        "magnitude_zero_point": inst.magnitude_zero_point,
        "sky_brightness": inst.sky_brightness_mag_arcsec2,
        "read_noise": inst.read_noise_e,
        "ccd_gain": inst.ccd_gain,
        "seeing": max(inst.psf_fwhm_arcsec, 1e-3),
        "psf_type": "GAUSSIAN",
    }
    sim = SimAPI(inst.num_pix, band, {"source_light_model_list": ["SERSIC_ELLIPSE"]})
    kwargs = {
        "magnitude": src.magnitude,
        "R_sersic": src.r_sersic_arcsec,
        "n_sersic": src.n_sersic,
        "e1": src.e1,
        "e2": src.e2,
        "center_x": 0.0,
        "center_y": 0.0,
    }
    _, kwargs_source, _ = sim.magnitude2amplitude(None, [kwargs])
    return float(kwargs_source[0]["amp"])


class SubstructureRenderer(TensorRenderer):
    """Noiseless images for batches of :class:`ImageParams` (one config, one device)."""

    def __init__(
        self,
        config: SubstructureConfig,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(config, device, dtype)
        self.chunk = _CHUNK if self.device.type == "cpu" else 8192
        inst, lens, src = config.instrument, config.lens, config.source
        n = inst.num_pix
        self.num_pix = n
        x, y = pixel_grid_arcsec(n, inst.pixel_scale_arcsec)
        self._n_flat = n * n
        self._gx = self._tensor(padded_flat(x))[None, :]
        self._gy = self._tensor(padded_flat(y))[None, :]

        distances = distance_kind(config)
        # θ_E of one solar mass; θ_E(M) = θ_E(1 M☉)·sqrt(M).
        self.rein_per_sqrt_msun = float(
            point_mass_einstein_radius_arcsec(
                1.0, lens.z_lens, lens.z_source, lens.h0, lens.omega_m, distances
            )
        )
        self.main_einstein_radius_arcsec = self.rein_per_sqrt_msun * float(np.sqrt(lens.mass_msun))
        if config.deeplense_compat and config.compat.einstein_radius_arcsec is not None:
            self.main_einstein_radius_arcsec = config.compat.einstein_radius_arcsec
        # Deflections scale linearly with an SIE's θ_E and the shear, as θ_E² for point masses.
        self.deflection_scale = deflection_scale(config)
        self.effective_einstein_radius_arcsec = (
            self.main_einstein_radius_arcsec * self.deflection_scale
        )
        self._point_rein_per_sqrt_msun = self.rein_per_sqrt_msun * float(
            np.sqrt(self.deflection_scale)
        )
        lens_phi, lens_q = ellipticity2phi_q(lens.e1, lens.e2)
        self._lens = [
            self._tensor(v) for v in (lens_q, lens_phi, self.effective_einstein_radius_arcsec)
        ]
        self._shear = [self._tensor(v * self.deflection_scale) for v in (lens.gamma1, lens.gamma2)]
        src_phi, src_q = ellipticity2phi_q(src.e1, src.e2)
        # caustics measures the Sérsic radius along the major axis; lenstronomy's R_sersic is the
        # product average of the axes: R_caustics = R_lenstronomy / sqrt(q).
        self.amplitude = source_amplitude(config)
        self._source = [
            self._tensor(v)
            for v in (
                src_q,
                src_phi,
                src.n_sersic,
                src.r_sersic_arcsec / np.sqrt(src_q),
                self.amplitude * inst.pixel_scale_arcsec**2,
            )
        ]
        self._k = k_lenstronomy(self._tensor(src.n_sersic))
        kernel = psf_kernel_1d(config)
        self.psf_kernel_1d = kernel
        self._kernel = None if kernel is None else self._tensor(kernel)
        # configs with per-image settings (real galaxies, lens light, randomisation, Model IV)
        self._views = (
            ViewRenderer(config, self.device, dtype, self.chunk) if config.per_image_views else None
        )

    def render(self, params: Sequence[ImageParams]) -> np.ndarray | list[np.ndarray]:
        """Noiseless images [B, H, W] (float32, lenstronomy flux units per pixel); configs with
        per-image views give a list of images, each on its view's own grid."""
        if self._views is not None:
            return self._views.render(params)
        out = np.empty((len(params), self.num_pix, self.num_pix), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(params):
            groups.setdefault(len(p.point_x), []).append(i)
        for group in groups.values():
            chosen = [params[i] for i in group]
            out[group] = self.render_points(
                np.array([[p.source_x, p.source_y] for p in chosen]),
                np.stack([p.point_x for p in chosen]),
                np.stack([p.point_y for p in chosen]),
                np.stack([p.point_mass for p in chosen]),
            ).cpu().numpy()
        return out

    def render_group(self, group: ParamGroup) -> torch.Tensor:
        """Noiseless images [b, H, W] of one label's parameters, on the renderer's device."""
        source = np.stack([group.source_x, group.source_y], axis=1)
        return self.render_points(source, group.point_x, group.point_y, group.point_mass)

    def render_points(
        self,
        source_xy: np.ndarray,
        point_x: np.ndarray,
        point_y: np.ndarray,
        point_mass_msun: np.ndarray,
    ) -> torch.Tensor:
        """Images [b, H, W] on the device for sources [b, 2] and point masses [b, K] (arcsec,
        M☉), in chunks of ``self.chunk`` images."""
        rein = self._point_rein_per_sqrt_msun * np.sqrt(point_mass_msun)
        chunks = [
            self.render_tensors(*(self._tensor(v[s : s + self.chunk]) for v in values))
            for values in [(source_xy, point_x, point_y, rein)]
            for s in range(0, len(source_xy), self.chunk)
        ]
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def render_tensors(
        self,
        source_xy: torch.Tensor,
        point_x: torch.Tensor,
        point_y: torch.Tensor,
        point_rein: torch.Tensor,
    ) -> torch.Tensor:
        """Core ray shooting on tensors: source_xy [B, 2]; point_* [B, K] (arcsec) → [B, H, W]."""
        gx, gy = self._gx, self._gy
        zero = torch.zeros((), dtype=self.dtype, device=self.device)
        q, phi, rein_main = self._lens
        ax, ay = reduced_deflection_angle_sie(zero, zero, q, phi, rein_main, gx, gy)
        sx, sy = reduced_deflection_angle_external_shear(zero, zero, *self._shear, gx, gy)
        beta_x = (gx - ax - sx).expand(source_xy.shape[0], -1).clone()
        beta_y = (gy - ay - sy).expand(source_xy.shape[0], -1).clone()
        subtract_point_deflections(beta_x, beta_y, gx, gy, point_x, point_y, point_rein)
        sq, sphi, sn, sre, sie = self._source
        flux = brightness_sersic(
            source_xy[:, :1], source_xy[:, 1:], sq, sphi, sn, sre, sie, beta_x, beta_y, self._k
        )
        images = flux[:, : self._n_flat].reshape(-1, 1, self.num_pix, self.num_pix)
        if self._kernel is not None:
            images = convolve_separable(images, self._kernel)
        return images[:, 0]
