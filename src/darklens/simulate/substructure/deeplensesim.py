"""DeepLenseSim's images through the lenstronomy calls its scripts make: the reference that
``--deeplense-compat`` is tested against, and a maker of reference test sets.

Written from DeepLenseSim (github.com/mwt5345/DeepLenseSim, MIT: ``deeplense/lens.py`` and the
``Model_I``–``Model_III`` scripts), facts only:

- main halo ``make_single_halo(1e12)``: SIE with θ_E from ``mass_to_radius`` (luminosity
  distances of FlatLambdaCDM(H0 70, Ωm 0.3, Ωb 0.05), D_ls = D_s − D_l, astropy's G, c, M☉),
  e1 = 0.1, e2 = 0, plus SHEAR γ1 = 0.05, γ2 = 0, all at z = 0.5;
- ``make_old_cdm``: 25 POINT_MASS subhalos, masses by inverse CDF of m^−0.9 on [1e6, 1e10] M☉,
  r ~ U(0.25, 2)″, θ ~ U(0, 2π), (x, y) = (r sin θ, r cos θ);
- ``make_vortex(3e10)``: 100 POINT_MASS elements of 3e8 M☉ on a line through the centre,
  coordinates linspace(−L, L) rotated by a U(0, 2π) angle, L = 0.06e-22 / (2 m_a)″,
  m_a = 10^U(−24, −22) eV;
- Model I (``simple_sim``): ``ImageModel`` on 150 × 150 pixels of 0.05″ (``inverse=False``
  grid), Gaussian PSF FWHM 0.087″ truncated at 3σ, Sérsic ``amp`` 20, R 0.25″, n 1,
  e = (−0.1, 0.1), centre U(±0.35″); stored image: Poisson(t·(model + N(0, |model|/t) +
  N(0, 0.01²))), t = 10^U(3, 3.5);
- Models II / III (``simple_sim_2``): ``SimAPI(64, kwargs_single_band, kwargs_model)`` with
  ``kwargs_model = {lens_model_list, lens_redshift_list, source_light_model_list,
  source_redshift_list: [1.0], cosmo: pyHalo's astropy_instance, z_source_convention: 2.5,
  z_source: 1.0}``, numerics ``{point_source_supersampling_factor: 1}``, the source's magnitude
  20 turned into an amplitude by ``sim.magnitude2amplitude``; stored image: ``model + model``.
  Model II's band is lenstronomy's ``Euclid(band='VIS', psf_type='GAUSSIAN', coadd_years=6)``;
  Model III's ``set_instrument('hst')`` sets no band in the published ``lens.py`` (the script
  fails), so, as DeepLense's Model III papers describe, ``HST(band='WFC3_F160W',
  psf_type='GAUSSIAN')`` is assumed.

Two differences from running their code, neither changing the images: parameters come from a
given ``numpy.random.Generator`` instead of numpy's global state, and one ``SimAPI`` /
``ImageModel`` is reused per number of point masses instead of being rebuilt per image.
DeepLenseSim passed ``numpix=`` to ``SimAPI`` and ``numPix=``/``deltapix=`` to
``make_grid_with_coordtransform``; lenstronomy 1.14 takes them positionally (``num_pix``,
``delta_pix``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

MODELS = ("model_i", "model_ii", "model_iii")
CLASSES = ("no_sub", "cdm", "axion")
FOLDER_NAMES = {"model_i": "Model_I", "model_ii": "Model_II", "model_iii": "Model_III"}
Z_LENS, Z_SOURCE, Z_SOURCE_CONVENTION = 0.5, 1.0, 2.5
MAIN_HALO_MSUN = 1e12
VORTEX_MSUN, VORTEX_POINTS = 3e10, 100
N_SUBHALOS = 25
# pyHalo's default astropy cosmology (Planck 2018, pyHalo ≥ Feb 2022).
PYHALO_COSMOLOGY = {"H0": 67.5, "Om0": 0.309, "Ob0": 0.049}


@dataclass
class DeepLenseSimParams:
    """One image's random draws, in DeepLenseSim's terms (angles arcsec, masses M☉)."""

    label: int
    source_x: float
    source_y: float
    exposure_s: float = float("nan")  # Model I only
    point_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))
    axion_mass_ev: float = float("nan")


def mass_to_radius_arcsec(mass_msun: np.ndarray | float) -> np.ndarray:
    """DeepLenseSim's ``mass_to_radius`` for its lens (z 0.5) and source (z 1): luminosity
    distances, D_ls = D_s − D_l, astropy constants."""
    from astropy import units as u
    from astropy.constants import G, M_sun, c
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.05)
    d_l = cosmo.luminosity_distance(Z_LENS).to(u.m)
    d_s = cosmo.luminosity_distance(Z_SOURCE).to(u.m)
    theta = np.sqrt(4 * G * np.asarray(mass_msun) * M_sun / c**2 * (d_s - d_l) / (d_l * d_s))
    return (theta * 206265).value


def draw_params(model: str, label: int, rng: np.random.Generator) -> DeepLenseSimParams:
    """One image's parameters from DeepLenseSim's distributions."""
    _check_model(model)
    kind = CLASSES[label]
    params = DeepLenseSimParams(label, *map(float, rng.uniform(-0.35, 0.35, 2)))
    if model == "model_i":
        params.exposure_s = float(10 ** rng.uniform(3, 3.5))
    if kind == "cdm":
        u = rng.uniform(0, 1, size=N_SUBHALOS)
        low, high, beta = 1e6, 1e10, -0.9
        lo, hi = low ** (beta + 1), high ** (beta + 1)
        params.point_mass = (lo + (hi - lo) * u) ** (1.0 / (beta + 1.0))
        radius = rng.uniform(0.25, 2.0, size=N_SUBHALOS)
        angle = rng.uniform(0, 2 * np.pi, size=N_SUBHALOS)
        params.point_x, params.point_y = radius * np.sin(angle), radius * np.cos(angle)
    elif kind == "axion":
        params.axion_mass_ev = float(10 ** rng.uniform(-24, -22))
        half_length = 0.06 * (2 * params.axion_mass_ev) ** -1 * 1e-22
        coords = np.linspace(-half_length, half_length, VORTEX_POINTS)
        angle = 2 * np.pi * rng.random()
        params.point_x, params.point_y = coords * np.cos(angle), coords * np.sin(angle)
        params.point_mass = np.full(VORTEX_POINTS, VORTEX_MSUN / VORTEX_POINTS)
    return params


def kwargs_lens(params: DeepLenseSimParams) -> list[dict]:
    """The lens keyword list DeepLenseSim builds: SIE, SHEAR, then one POINT_MASS each."""
    theta_e = float(mass_to_radius_arcsec(MAIN_HALO_MSUN))
    lens = [
        {"theta_E": theta_e, "e1": 0.1, "e2": 0, "center_x": 0, "center_y": 0.0},
        {"gamma1": 0.05, "gamma2": 0},
    ]
    radii = np.atleast_1d(mass_to_radius_arcsec(params.point_mass))
    for rein, x, y in zip(radii, params.point_x, params.point_y, strict=True):
        lens.append({"theta_E": float(rein), "center_x": float(x), "center_y": float(y)})
    return lens


def _sersic(params: DeepLenseSimParams, brightness: dict) -> list[dict]:
    return [
        {
            **brightness,
            "R_sersic": 0.25,
            "n_sersic": 1,
            "e1": -0.1,
            "e2": 0.1,
            "center_x": params.source_x,
            "center_y": params.source_y,
        }
    ]


def model_image(model: str, params: DeepLenseSimParams) -> np.ndarray:
    """The noiseless ``image_model`` DeepLenseSim computes (float64)."""
    _check_model(model)
    n_points = len(params.point_mass)
    if model == "model_i":
        image_model = _image_model_class(n_points)
        return image_model.image(kwargs_lens(params), _sersic(params, {"amp": 20}), None, None)
    sim, image_model = _sim_api(model, n_points)
    _, kwargs_source, _ = sim.magnitude2amplitude(None, _sersic(params, {"magnitude": 20}))
    return image_model.image(kwargs_lens(params), kwargs_source, None)


def stored_image(
    model: str, params: DeepLenseSimParams, rng: np.random.Generator | None = None
) -> np.ndarray:
    """What DeepLenseSim saves: Model I counts (``rng`` draws the noise), else model + model."""
    image = model_image(model, params)
    if model != "model_i":
        return image + image
    if rng is None:
        raise ValueError("Model I images are noisy: pass the generator that draws the noise")
    t = params.exposure_s
    poisson = rng.standard_normal(image.shape) * np.sqrt(np.abs(image) / t)
    background = rng.standard_normal(image.shape) * 1e-2
    return rng.poisson(np.clip(t * (image + poisson + background), 0, None)).astype(np.float64)


def write_deeplense_folder(root: str | Path, model: str, n_per_class: int, seed: int = 0) -> Path:
    """Write ``root/Model_X/{no_sub,cdm,axion}/*.npy`` as DeepLenseSim's scripts save them:
    an image array per file (Model I counts as float64), axion files the object array
    ``[image, axion_mass]``; file names ``<class>_sim_<random hex>``. Returns the model folder."""
    _check_model(model)
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER_NAMES[model]
    for label, kind in enumerate(CLASSES):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for _ in range(n_per_class):
            params = draw_params(model, label, rng)
            image = stored_image(model, params, rng)
            payload = (
                np.array([image, params.axion_mass_ev], dtype=object) if kind == "axion" else image
            )
            name = f"{kind}_sim_{secrets.token_hex(16)}"
            np.save(folder / kind / name, payload, allow_pickle=kind == "axion")
    return folder


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"DeepLenseSim reference models are {MODELS}, got {model!r}")


@lru_cache(maxsize=8)
def _image_model_class(n_points: int):
    """Model I's ``ImageModel`` (simple_sim) for a lens list with ``n_points`` point masses."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util import util

    num_pix, delta_pix = 150, 0.05
    _, _, ra0, dec0, _, _, pix2coord, _ = util.make_grid_with_coordtransform(
        num_pix, delta_pix, subgrid_res=1, center_ra=0, center_dec=0, inverse=False
    )
    data = ImageData(
        background_rms=1e-2,
        exposure_time=1.0,  # unused by image(); the exposure only enters the noise
        ra_at_xy_0=ra0,
        dec_at_xy_0=dec0,
        transform_pix2angle=pix2coord,
        image_data=np.zeros((num_pix, num_pix)),
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=0.087, pixel_size=delta_pix, truncation=3)
    return ImageModel(
        data,
        psf,
        lens_model_class=LensModel(["SIE", "SHEAR"] + ["POINT_MASS"] * n_points),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
        lens_light_model_class=None,
    )


@lru_cache(maxsize=8)
def _sim_api(model: str, n_points: int):
    """Model II/III's ``SimAPI`` and image model (simple_sim_2) for ``n_points`` point masses."""
    import warnings

    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    kwargs_model = {
        "lens_model_list": ["SIE", "SHEAR"] + ["POINT_MASS"] * n_points,
        "lens_redshift_list": [Z_LENS] * (2 + n_points),
        "source_light_model_list": ["SERSIC_ELLIPSE"],
        "source_redshift_list": [Z_SOURCE],
        "cosmo": FlatLambdaCDM(**PYHALO_COSMOLOGY),
        "z_source_convention": Z_SOURCE_CONVENTION,
        "z_source": Z_SOURCE,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lenstronomy warns that a cosmology object was given
        sim = SimAPI(64, _band(model), kwargs_model)
        return sim, sim.image_model_class({"point_source_supersampling_factor": 1})


def _band(model: str) -> dict:
    if model == "model_ii":
        from lenstronomy.SimulationAPI.ObservationConfig.Euclid import Euclid

        return Euclid(band="VIS", psf_type="GAUSSIAN", coadd_years=6).kwargs_single_band()
    from lenstronomy.SimulationAPI.ObservationConfig.HST import HST

    return HST(band="WFC3_F160W", psf_type="GAUSSIAN").kwargs_single_band()
