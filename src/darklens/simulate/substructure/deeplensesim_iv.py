"""DeepLenseSim's Model IV through the lenstronomy calls its scripts make, one band: the reference
that ``model_iv --deeplense-compat`` is tested against, and a maker of reference test sets.

Written from DeepLenseSim's ``Model_IV/sim_no_sub.py``, ``sim_cdm.py`` and ``sim_axion.py``
(github.com/mwt5345/DeepLenseSim, MIT), facts only:

- per image: σ_v ~ N(260, 20) km/s, source centre x, y ~ U(−0.3, 0.3)″, angle ~ U(−π, π), a
  galaxy drawn uniformly from the selected Galaxy10 DECaLS images;
- ``SimAPI(64, Euclid(band='VIS', psf_type='GAUSSIAN', coadd_years=6), kwargs_model)`` with
  ``lens_light_model_list: [SERSIC_ELLIPSE] × 2``, ``source_light_model_list: [INTERPOL]``,
  ``source_redshift_list: [1.0]``, ``z_source_convention: 2.5``, ``z_source: 2.5`` and numerics
  ``{point_source_supersampling_factor: 1}``;
- no_sub: lens ``[SIE]`` at z 0.5 with ``{sigma_v, e1: 0, e2: 0}`` turned into θ_E by
  ``sim.physical2lensing_conversion``, cosmology FlatLambdaCDM(H0 70, Ωm 0.3, Ωb 0);
- cdm and axion: lens ``[SIE, SHEAR] + pyHalo's halos`` with ``{theta_E: 1.5, e1: 0, e2: 0}``,
  ``{gamma1: 0.05, gamma2: 0}``, cosmology pyHalo's ``astropy_instance``;
- lens light ``{magnitude: 17, R_sersic: 0.4, n_sersic: 2.3, e1: 0, e2: 0.05}`` and
  ``{magnitude: 28, R_sersic: 1.5, n_sersic: 1.2, e1: 0, e2: 0.3}`` in g, the first one 1 mag
  fainter in r and 2 in i; source ``{magnitude: 22 (g), 19 (r), 18 (i), image: the galaxy's
  g, r or i channel minus the median of its first 50 rows and columns, scale: 0.0025, phi_G:
  angle}``;
- ``image = imSim.image(kwargs_lens, kwargs_source, kwargs_lens_light)``,
  ``image += sim.noise_for_model(model=image)``, stored as ``clip(min=0) / max`` over the three
  bands.

What cannot be run as published, and is replaced (the README's table lists these):
pyHalo's CDM and ULDM realisations (NFW halos along the line of sight, multi-plane) by
DeepLenseSim's Model I–III point-mass subhalos and vortex (θ_E from ``mass_to_radius``, read at
the convention like the SIE's, as darklens' compat does); the Galaxy10 galaxies by any given
galaxy images (default: darklens' Hubble Deep Field bank, spanning the same 0.64″); one band
instead of three (``band``, default r), divided by its own maximum; the noise seeded from a
given generator. The physical model and the lenstronomy calls are otherwise the scripts'.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from darklens.simulate.substructure import deeplensesim as dls

CLASSES = dls.CLASSES
FOLDER_NAME = "Model_IV"
THETA_E_ARCSEC = 1.5
SIGMA_V_KMS = (260.0, 20.0)
GALAXY_BOX_ARCSEC = 256 * 0.0025
# band: (source magnitude, first lens-light magnitude, galaxy channel)
BANDS = {"g": (22.0, 17.0, 0), "r": (19.0, 18.0, 1), "i": (18.0, 19.0, 2)}
_LENS_LIGHT = ({"R_sersic": 0.4, "n_sersic": 2.3, "e1": 0, "e2": 0.05},
               {"magnitude": 28, "R_sersic": 1.5, "n_sersic": 1.2, "e1": 0, "e2": 0.3})  # fmt: skip


@dataclass
class ModelIVParams:
    """One image's draws in DeepLenseSim's terms (angles arcsec or radians, masses M☉)."""

    label: int
    sigma_v_kms: float
    source_x: float
    source_y: float
    angle_rad: float
    galaxy: int
    point_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))
    axion_mass_ev: float = float("nan")


def default_galaxies() -> tuple[np.ndarray, ...]:
    """darklens' built-in Hubble Deep Field galaxies (unit total flux, 64 × 64 pixels)."""
    from darklens.data.image_bank import load_image_bank

    return load_image_bank("hubble_deep_field").images


def draw_params(label: int, rng: np.random.Generator, n_galaxies: int) -> ModelIVParams:
    """One image's parameters: the scripts' draws, then the substituted substructure."""
    sigma_v = float(rng.normal(*SIGMA_V_KMS))
    x, y, angle = rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-np.pi, np.pi)
    params = ModelIVParams(label, sigma_v, float(x), float(y), float(angle), 0)
    params.galaxy = int(rng.integers(n_galaxies))
    points = dls.draw_params("model_ii", label, rng)
    params.point_x, params.point_y = points.point_x, points.point_y
    params.point_mass, params.axion_mass_ev = points.point_mass, points.axion_mass_ev
    return params


def model_image(params: ModelIVParams, galaxy: np.ndarray, band: str = "r") -> np.ndarray:
    """The noiseless ``imSim.image`` of one band (float64), ``galaxy`` as the source image."""
    sim, image_model = _sim_api(params.label, len(params.point_mass))
    source_mag, lens_mag, _ = BANDS[band]
    lens_light = [{**_LENS_LIGHT[0], "magnitude": lens_mag}, dict(_LENS_LIGHT[1])]
    for light in lens_light:
        light.update(center_x=0, center_y=0)
    source = {
        "magnitude": source_mag, "image": np.asarray(galaxy, dtype=np.float64),
        "scale": GALAXY_BOX_ARCSEC / max(np.shape(galaxy)), "phi_G": params.angle_rad,
        "center_x": params.source_x, "center_y": params.source_y,
    }  # fmt: skip
    kwargs_lens_light, kwargs_source, _ = sim.magnitude2amplitude(lens_light, [source])
    # The scripts build a new SimAPI per image; this one is reused, so INTERPOL's cached
    # interpolation of the previous galaxy must go (lenstronomy keeps it otherwise).
    image_model.SourceModel.delete_interpol_caches()
    return image_model.image(_kwargs_lens(sim, params), kwargs_source, kwargs_lens_light)


def stored_image(
    params: ModelIVParams, galaxy: np.ndarray, rng: np.random.Generator, band: str = "r"
) -> np.ndarray:
    """What the scripts save for one band: image + noise_for_model, clipped at 0, / max."""
    image = model_image(params, galaxy, band)
    sim, _ = _sim_api(params.label, len(params.point_mass))
    image = image + sim.noise_for_model(model=image, seed=int(rng.integers(2**31)))
    return np.clip(image, 0, None) / np.max(image)


def write_model_iv_folder(
    root: str | Path,
    n_per_class: int,
    seed: int = 0,
    galaxies: tuple[np.ndarray, ...] | None = None,
    band: str = "r",
) -> Path:
    """Write ``root/Model_IV/{no_sub,cdm,axion}/*.npy`` (one band per image, axion files
    ``[image, axion_mass]``) as :func:`deeplensesim.write_deeplense_folder` does."""
    galaxies = default_galaxies() if galaxies is None else galaxies
    rng = np.random.default_rng(seed)
    folder = Path(root) / FOLDER_NAME
    for label, kind in enumerate(CLASSES):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for _ in range(n_per_class):
            params = draw_params(label, rng, len(galaxies))
            image = stored_image(params, galaxies[params.galaxy], rng, band)
            payload = (
                np.array([image, params.axion_mass_ev], dtype=object) if kind == "axion" else image
            )
            np.save(folder / kind / f"{kind}_sim_{secrets.token_hex(16)}", payload,
                    allow_pickle=kind == "axion")  # fmt: skip
    return folder


def _kwargs_lens(sim, params: ModelIVParams) -> list[dict]:
    if CLASSES[params.label] == "no_sub":
        kwargs_mass = [{"sigma_v": params.sigma_v_kms, "center_x": 0, "center_y": 0,
                        "e1": 0.0, "e2": 0}]  # fmt: skip
        return sim.physical2lensing_conversion(kwargs_mass=kwargs_mass)
    lens = [
        {"theta_E": THETA_E_ARCSEC, "e1": 0, "e2": 0, "center_x": 0, "center_y": 0.0},
        {"gamma1": 0.05, "gamma2": 0},
    ]
    radii = np.atleast_1d(dls.mass_to_radius_arcsec(params.point_mass))
    for rein, x, y in zip(radii, params.point_x, params.point_y, strict=True):
        lens.append({"theta_E": float(rein), "center_x": float(x), "center_y": float(y)})
    return lens


@lru_cache(maxsize=8)
def _sim_api(label: int, n_points: int):
    """The scripts' ``SimAPI`` and image model for one class (and number of point masses)."""
    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.SimulationAPI.ObservationConfig.Euclid import Euclid
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    if CLASSES[label] == "no_sub":
        lens_models, cosmo = ["SIE"], FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.0)
    else:
        lens_models = ["SIE", "SHEAR"] + ["POINT_MASS"] * n_points
        cosmo = FlatLambdaCDM(**dls.PYHALO_COSMOLOGY)
    kwargs_model = {
        "lens_model_list": lens_models,
        "lens_redshift_list": [dls.Z_LENS] * len(lens_models),
        "lens_light_model_list": ["SERSIC_ELLIPSE", "SERSIC_ELLIPSE"],
        "source_light_model_list": ["INTERPOL"],
        "source_redshift_list": [dls.Z_SOURCE],
        "cosmo": cosmo,
        "z_source_convention": dls.Z_SOURCE_CONVENTION,
        "z_source": dls.Z_SOURCE_CONVENTION,
    }
    band = Euclid(band="VIS", psf_type="GAUSSIAN", coadd_years=6).kwargs_single_band()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lenstronomy warns that a cosmology object was given
        sim = SimAPI(64, band, kwargs_model)
        return sim, sim.image_model_class({"point_source_supersampling_factor": 1})
