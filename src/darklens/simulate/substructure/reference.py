"""Independent reference renderer: the same images made per image with lenstronomy.

Used by the tests (our caustics path must agree with it) and by the benchmark (the "plain
per-image lenstronomy loop" baseline). lenstronomy builds one ``ImageModel`` per number of point
masses and reuses it, as a careful user of lenstronomy would.
"""

from __future__ import annotations

import numpy as np
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel

from darklens.simulate.func.cosmology import point_mass_einstein_radius_arcsec
from darklens.simulate.substructure.config import SubstructureConfig
from darklens.simulate.substructure.render import distance_kind, source_amplitude
from darklens.simulate.substructure.sampling import ImageParams


class LenstronomyRenderer:
    """Noiseless images, one at a time, through lenstronomy's ImageModel."""

    def __init__(self, config: SubstructureConfig) -> None:
        self.config = config
        inst, lens = config.instrument, config.lens
        n, pix = inst.num_pix, inst.pixel_scale_arcsec
        corner = -(n - 1) / 2.0 * pix
        self._data = ImageData(
            image_data=np.zeros((n, n)),
            ra_at_xy_0=corner,
            dec_at_xy_0=corner,
            transform_pix2angle=np.array([[pix, 0.0], [0.0, pix]]),
        )
        if inst.psf_fwhm_arcsec > 0:
            self._psf = PSF(
                psf_type="GAUSSIAN",
                fwhm=inst.psf_fwhm_arcsec,
                pixel_size=pix,
                truncation=inst.psf_truncation_sigma,
            )
        else:
            self._psf = PSF(psf_type="NONE")
        self._distances = distance_kind(config)
        self.main_einstein_radius_arcsec = float(
            point_mass_einstein_radius_arcsec(
                lens.mass_msun, lens.z_lens, lens.z_source, lens.h0, lens.omega_m, self._distances
            )
        )
        self.amplitude = source_amplitude(config)
        self._models: dict[int, ImageModel] = {}

    def _model(self, n_points: int) -> ImageModel:
        if n_points not in self._models:
            self._models[n_points] = ImageModel(
                self._data,
                self._psf,
                lens_model_class=LensModel(["SIE", "SHEAR"] + ["POINT_MASS"] * n_points),
                source_model_class=LightModel(["SERSIC_ELLIPSE"]),
                kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
            )
        return self._models[n_points]

    def render_one(self, params: ImageParams) -> np.ndarray:
        lens, src = self.config.lens, self.config.source
        kwargs_lens = [
            {
                "theta_E": self.main_einstein_radius_arcsec,
                "e1": lens.e1,
                "e2": lens.e2,
                "center_x": 0.0,
                "center_y": 0.0,
            },
            {"gamma1": lens.gamma1, "gamma2": lens.gamma2},
        ]
        rein = point_mass_einstein_radius_arcsec(
            params.point_mass, lens.z_lens, lens.z_source, lens.h0, lens.omega_m, self._distances
        )
        kwargs_lens += [
            {"theta_E": float(r), "center_x": float(x), "center_y": float(y)}
            for r, x, y in zip(np.atleast_1d(rein), params.point_x, params.point_y, strict=True)
        ]
        kwargs_source = [
            {
                "amp": self.amplitude,
                "R_sersic": src.r_sersic_arcsec,
                "n_sersic": src.n_sersic,
                "e1": src.e1,
                "e2": src.e2,
                "center_x": params.source_x,
                "center_y": params.source_y,
            }
        ]
        return self._model(len(params.point_x)).image(kwargs_lens, kwargs_source)

    def render(self, params: list[ImageParams]) -> np.ndarray:
        return np.stack([self.render_one(p) for p in params]).astype(np.float32)
