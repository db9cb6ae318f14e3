"""Point-source lensing with lenstronomy: image positions, magnifications and time delays.

Done once per lensed supernova in plain Python (it is not per pixel). The SIE + external shear
is the same lens the extended light is ray-traced through with caustics (lenstronomy's θ_E,
axis ratio q and position angle φ converted to its (e1, e2)); time delays come from the Fermat
potential and the cosmology: Δt = (1 + z_l) D_l D_s / (c D_ls) · Δφ.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from darklens.simulate.func.cosmology import (
    ARCSEC_PER_RADIAN,
    SPEED_OF_LIGHT_KMS,
    angular_diameter_distance_mpc,
)
from darklens.simulate.lensfind.components import Deflector

SECONDS_PER_DAY = 86_400.0
KM_PER_MPC = 3.085_677_581_491_367e19
# At most this many images are kept per source (SIE + shear makes 2 or 4; a rare faint extra
# image near the centre is dropped: the least magnified go first).
MAX_IMAGES = 4


@dataclass(frozen=True)
class LensedImages:
    """Images of a point source, ordered by arrival: positions (arcsec), signed magnifications,
    delays after the first image (days)."""

    x: np.ndarray
    y: np.ndarray
    magnification: np.ndarray
    delay_days: np.ndarray

    @property
    def count(self) -> int:
        return len(self.x)


@lru_cache(maxsize=1)
def _solver():
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

    model = LensModel(["SIE", "SHEAR"])
    return model, LensEquationSolver(model)


def lenstronomy_kwargs(deflector: Deflector) -> list[dict[str, float]]:
    """lenstronomy keyword arguments of the SIE + shear (shear centred on the lens)."""
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    e1, e2 = phi_q2_ellipticity(deflector.phi, deflector.q)
    return [
        {
            "theta_E": deflector.theta_e,
            "e1": float(e1),
            "e2": float(e2),
            "center_x": deflector.x,
            "center_y": deflector.y,
        },
        {
            "gamma1": deflector.gamma1,
            "gamma2": deflector.gamma2,
            "ra_0": deflector.x,
            "dec_0": deflector.y,
        },
    ]


def time_delay_distance_days_per_arcsec2(
    z_lens: float, z_source: float, h0: float, omega_m: float
) -> float:
    """(1 + z_l) D_l D_s / (c D_ls) in days per arcsec² of Fermat potential."""
    d_l = angular_diameter_distance_mpc(0.0, z_lens, h0, omega_m)
    d_s = angular_diameter_distance_mpc(0.0, z_source, h0, omega_m)
    d_ls = angular_diameter_distance_mpc(z_lens, z_source, h0, omega_m)
    distance_km = (1.0 + z_lens) * d_l * d_s / d_ls * KM_PER_MPC
    return distance_km / SPEED_OF_LIGHT_KMS / SECONDS_PER_DAY / ARCSEC_PER_RADIAN**2


def solve_images(
    deflector: Deflector,
    source_x: float,
    source_y: float,
    z_lens: float,
    z_source: float,
    h0: float,
    omega_m: float,
) -> LensedImages:
    """Images of a point source at (source_x, source_y) arcsec behind ``deflector``."""
    model, solver = _solver()
    kwargs = lenstronomy_kwargs(deflector)
    offset = float(np.hypot(source_x - deflector.x, source_y - deflector.y))
    x, y = solver.image_position_from_source(
        source_x,
        source_y,
        kwargs,
        search_window=2.0 * (1.5 * deflector.theta_e + offset) + 0.5,
        min_distance=deflector.theta_e / 40.0,
    )
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mu = np.asarray(model.magnification(x, y, kwargs), dtype=np.float64)
    keep = np.sort(np.argsort(-np.abs(mu), kind="stable")[:MAX_IMAGES])
    x, y, mu = x[keep], y[keep], mu[keep]
    fermat = np.asarray(model.fermat_potential(x, y, kwargs, source_x, source_y))
    arrival = fermat * time_delay_distance_days_per_arcsec2(z_lens, z_source, h0, omega_m)
    order = np.argsort(arrival, kind="stable")
    delays = arrival[order] - arrival[order][0] if len(order) else arrival
    return LensedImages(x[order], y[order], mu[order], delays)
