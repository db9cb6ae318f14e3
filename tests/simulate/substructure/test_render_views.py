"""The general rendering path (per-image views) against lenstronomy's ImageModel built image by
image from the same settings: real-galaxy sources (INTERPOL), lens light, per-image pixel scale,
PSF, Einstein radius, shear and substructure."""

from __future__ import annotations

import numpy as np
import pytest
from lenstronomy.Data.imaging_data import ImageData
from lenstronomy.Data.psf import PSF
from lenstronomy.ImSim.image_model import ImageModel
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel

from darklens.simulate.api import resolve_config
from darklens.simulate.substructure.noise import observed_view_image
from darklens.simulate.substructure.presets import get_anchor
from darklens.simulate.substructure.render import SubstructureRenderer
from darklens.simulate.substructure.sampling import ImageParams, draw_image_params
from darklens.simulate.substructure.views import image_bank

PIXEL_TOLERANCE = 1e-4  # of the image's peak


def _sersic_kwargs(light, x=0.0, y=0.0) -> dict:
    return {"amp": light.amplitude, "R_sersic": light.r_sersic_arcsec, "n_sersic": light.n_sersic,
            "e1": light.e1, "e2": light.e2, "center_x": x, "center_y": y}  # fmt: skip


def lenstronomy_image(config, p: ImageParams) -> np.ndarray:
    """The same image from lenstronomy's profiles, with the view's values as its kwargs."""
    view, n = p.view, p.view.num_pix
    pixel = view.pixel_scale_arcsec
    corner = -(n - 1) / 2 * pixel
    data = ImageData(image_data=np.zeros((n, n)), ra_at_xy_0=corner, dec_at_xy_0=corner,
                     transform_pix2angle=np.diag([pixel, pixel]))  # fmt: skip
    psf = PSF(psf_type="NONE")
    if view.psf_fwhm_arcsec > 0:
        psf = PSF(psf_type="GAUSSIAN", fwhm=view.psf_fwhm_arcsec, pixel_size=pixel,
                  truncation=config.instrument.psf_truncation_sigma)  # fmt: skip
    lens = [
        {
            "theta_E": view.einstein_radius_arcsec,
            "e1": view.lens_e1,
            "e2": view.lens_e2,
            "center_x": 0.0,
            "center_y": 0.0,
        },
        {"gamma1": view.gamma1, "gamma2": view.gamma2},
    ]
    lens += [{"theta_E": view.point_rein_per_sqrt_msun * np.sqrt(m), "center_x": x, "center_y": y}
             for x, y, m in zip(p.point_x, p.point_y, p.point_mass, strict=True)]  # fmt: skip
    if view.source is not None:
        source_models, source = (
            ["SERSIC_ELLIPSE"],
            _sersic_kwargs(view.source, p.source_x, p.source_y),
        )
    else:
        galaxy = image_bank(config).images[view.bank_index]
        galaxy = galaxy[:, ::-1] if view.bank_flip else galaxy
        scale = view.bank_box_arcsec / max(galaxy.shape)
        source_models = ["INTERPOL"]
        source = {
            "image": galaxy,
            "amp": view.bank_flux / scale**2,
            "scale": scale,
            "phi_G": view.bank_angle_rad,
            "center_x": p.source_x,
            "center_y": p.source_y,
        }
    model = ImageModel(
        data, psf,
        lens_model_class=LensModel(["SIE", "SHEAR"] + ["POINT_MASS"] * len(p.point_x)),
        source_model_class=LightModel(source_models),
        lens_light_model_class=LightModel(["SERSIC_ELLIPSE"] * len(view.lens_light)),
        kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
    )  # fmt: skip
    lens_light = [_sersic_kwargs(c) for c in view.lens_light]
    return model.image(lens, [source], lens_light)


@pytest.mark.parametrize(
    "preset, seed",
    [("model_iv", 1), ("robust", 2), ("robust", 3)],
    ids=["model_iv", "robust", "robust2"],
)
def test_views_render_as_lenstronomy_does(preset, seed):
    config = resolve_config(preset)
    renderer = SubstructureRenderer(config)
    params = [draw_image_params(config, i % 3, seed, i) for i in range(12)]
    ours = renderer.render(params)
    for image, p in zip(ours, params, strict=True):
        reference = lenstronomy_image(config, p)
        assert image.shape == reference.shape == (p.view.num_pix,) * 2
        assert np.max(np.abs(image - reference)) <= PIXEL_TOLERANCE * reference.max()
    views = [p.view for p in params]
    if preset == "model_iv":
        assert any(v.bank_flip for v in views) and len({v.bank_box_arcsec for v in views}) == 12
    else:  # randomised views draw continuous settings; anchors keep their model's grid
        free = [v for v in views if v.anchor < 0]
        assert len({v.pixel_scale_arcsec for v in free}) == len(free)
        assert {v.num_pix for v in free} <= {64}
        for v in views:
            anchor = get_anchor(config.randomize.anchors[v.anchor]) if v.anchor >= 0 else None
            if anchor is not None:
                assert v.num_pix == anchor.instrument.num_pix
                assert v.pixel_scale_arcsec == anchor.instrument.pixel_scale_arcsec


def test_flux_scale_and_brightness_leave_the_normalised_image_unchanged():
    """What the robust recipe relies on: min-max normalised inputs do not see the flux scale."""
    config = resolve_config("robust")
    renderer = SubstructureRenderer(config)
    p = next(
        p for p in (draw_image_params(config, 1, 0, i) for i in range(1, 100, 3))
        if p.view.anchor < 0 and not p.view.normalize_max
    )  # fmt: skip
    p.view.noise = "none"
    rng = np.random.default_rng(0)
    images = []
    for scale in (1e-2, 1.0, 1e2):
        p.view.flux_scale = scale
        images.append(
            observed_view_image(renderer.render([p])[0], p.view, rng, config.instrument.num_pix)
        )
    np.testing.assert_allclose(images[0] * 1e4, images[2], rtol=1e-6)
    norm = [(im - im.min()) / (im.max() - im.min()) for im in images]
    np.testing.assert_allclose(norm[0], norm[2], atol=1e-6)
