"""Lensed-transient simulator: lensing vs lenstronomy, light curves, photometry, layout,
reproducibility, dataset file and CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from astropy.cosmology import FlatLambdaCDM
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver
from lenstronomy.SimulationAPI.observation_api import SingleBand
from typer.testing import CliRunner

from darklens.cli import app
from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.simulate.api import get_any_preset, preset_names, simulate
from darklens.simulate.func.profiles import ray_trace
from darklens.simulate.func.rng import PARAMS_STREAM, image_rng
from darklens.simulate.lensfind.sampling import Deflector
from darklens.simulate.transients import (
    CLASS_NAMES,
    OBJECT_KINDS,
    TRANSIENT_PRESETS,
    aperture_photometry,
    bazin_flux,
    draw_transient_params,
    solve_images,
    transient_layout,
)
from darklens.simulate.transients.kind import noise_levels, render_block
from darklens.simulate.transients.lensing import lenstronomy_kwargs
from darklens.simulate.transients.render import TransientRenderer
from darklens.simulate.transients.sampling import draw_supernova, supernova_light_curve

runner = CliRunner()
LENS = Deflector(x=0.05, y=-0.03, theta_e=1.3, q=0.7, phi=0.4, gamma1=0.02, gamma2=-0.01)
Z_LENS, Z_SOURCE = 0.5, 1.5


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**overrides):
    """DES-deep with few epochs (keeps the tests fast); overrides are dotted settings."""
    settings = {"instrument.n_epochs": 4, "instrument.cadence_days": 7.0} | overrides
    return TRANSIENT_PRESETS.get("transients_des_deep").override(settings)


# -- lensing -------------------------------------------------------------------------------------
def _lenstronomy_reference(source_x: float, source_y: float):
    cosmo = FlatLambdaCDM(H0=70.0, Om0=0.3)
    model = LensModel(["SIE", "SHEAR"], z_lens=Z_LENS, z_source=Z_SOURCE, cosmo=cosmo)
    kwargs = lenstronomy_kwargs(LENS)
    x, y = LensEquationSolver(model).image_position_from_source(
        source_x, source_y, kwargs, min_distance=0.02, search_window=8.0
    )
    arrival = model.arrival_time(x, y, kwargs)
    order = np.argsort(arrival)
    return x[order], y[order], arrival[order] - arrival[order][0]


@pytest.mark.parametrize(("offset", "expected"), [((0.08, 0.04), 4), ((0.9, 0.4), 2)])
def test_image_count_positions_and_delays_match_lenstronomy(offset, expected):
    sx, sy = LENS.x + offset[0], LENS.y + offset[1]
    images = solve_images(LENS, sx, sy, Z_LENS, Z_SOURCE, 70.0, 0.3)
    ref_x, ref_y, ref_delays = _lenstronomy_reference(sx, sy)
    assert images.count == expected == len(ref_x)
    np.testing.assert_allclose(images.x, ref_x, atol=1e-3)
    np.testing.assert_allclose(images.y, ref_y, atol=1e-3)
    np.testing.assert_allclose(images.delay_days, ref_delays, rtol=1e-3, atol=1e-3)
    assert images.delay_days[0] == 0 and np.all(np.diff(images.delay_days) >= 0)
    assert np.sum(images.magnification < 0) == expected // 2  # saddle points have μ < 0


def test_supernova_images_sit_where_caustics_maps_them_to_the_source():
    """The arcs (caustics ray tracing) and the SN images (lenstronomy) share one lens."""
    sx, sy = LENS.x + 0.08, LENS.y + 0.04
    images = solve_images(LENS, sx, sy, Z_LENS, Z_SOURCE, 70.0, 0.3)
    names = ("x", "y", "q", "phi", "theta_e", "gamma1", "gamma2")
    lens = {k: torch.tensor([[getattr(LENS, k)]], dtype=torch.float64) for k in names}
    beta_x, beta_y = ray_trace(lens, torch.tensor(images.x)[None], torch.tensor(images.y)[None])
    np.testing.assert_allclose(beta_x.numpy()[0], sx, atol=1e-6)
    np.testing.assert_allclose(beta_y.numpy()[0], sy, atol=1e-6)


# -- light curves --------------------------------------------------------------------------------
def test_bazin_curve_peaks_at_the_peak_day_with_the_peak_flux_and_starts_at_explosion():
    t = np.linspace(-50.0, 150.0, 20001)
    peak = np.array([100.0, 250.0])
    flux = bazin_flux(t, peak, 30.0, 10.0, 3.0, np.array([15.0, 40.0]))
    assert flux.shape == (len(t), 2)
    np.testing.assert_allclose(t[np.argmax(flux, axis=0)], 30.0, atol=0.02)
    np.testing.assert_allclose(flux.max(axis=0), peak, rtol=1e-6)
    assert np.all(flux[t < 10.0] == 0) and np.all(flux[t >= 10.0] > 0)
    # The slower decline keeps more of its peak 60 days later.
    later = np.searchsorted(t, 90.0)
    assert flux[later, 1] / peak[1] > flux[later, 0] / peak[0]


def _days_to_half(curve: np.ndarray, t: np.ndarray) -> float:
    after = t > t[np.argmax(curve)]
    return float(t[after][np.argmax(curve[after] < 0.5 * curve.max())] - t[np.argmax(curve)])


def test_type_ia_declines_faster_than_core_collapse_and_time_dilation_stretches():
    config = small_config()
    zero_points = np.array([b.magnitude_zero_point for b in config.instrument.bands])
    t = np.linspace(-100.0, 400.0, 5001)
    ia = draw_supernova(config, "ia", 0.5, np.random.default_rng(1))
    cc = draw_supernova(config, "cc", 0.5, np.random.default_rng(1))
    ref = config.instrument.reference_index
    ia_curve = supernova_light_curve(ia, t, zero_points)[:, ref]
    cc_curve = supernova_light_curve(cc, t, zero_points)[:, ref]
    assert _days_to_half(ia_curve, t) < _days_to_half(cc_curve, t)
    far = draw_supernova(config, "ia", 1.0, np.random.default_rng(1))
    far_curve = supernova_light_curve(far, t, zero_points)[:, ref]
    ratio = _days_to_half(far_curve, t) / _days_to_half(ia_curve, t)
    assert ratio == pytest.approx(2.0 / 1.5, rel=0.02)
    assert t[np.argmax(ia_curve)] == pytest.approx(ia.peak_day, abs=0.1)


def test_a_delay_shifts_the_whole_curve():
    config = small_config()
    zero_points = np.array([b.magnitude_zero_point for b in config.instrument.bands])
    sn = draw_supernova(config, "cc", 0.7, np.random.default_rng(3))
    t = np.linspace(-60.0, 200.0, 261)
    delayed = supernova_light_curve(sn, t, zero_points, delay_days=12.5)
    np.testing.assert_allclose(delayed, supernova_light_curve(sn, t - 12.5, zero_points))
    undelayed = supernova_light_curve(sn, t, zero_points)
    shift = t[np.argmax(delayed, axis=0)] - t[np.argmax(undelayed, axis=0)]
    np.testing.assert_allclose(shift, 12.5, atol=1.0)


# -- rendering, photometry and noise -------------------------------------------------------------
def test_star_aperture_flux_matches_its_magnitude_in_every_epoch():
    """Noiseless star: aperture sum (background 0) = 10^(−0.4 (m − zp)) e-/s per band."""
    config = small_config(**{"instrument.noise": "none", "non_lens_fractions": [0, 0, 0, 0, 1, 0]})
    renderer = TransientRenderer(config)
    params = [draw_transient_params(config, 0, image_rng(5, i, PARAMS_STREAM)) for i in range(3)]
    epochs = renderer.render(params)
    zero_points = np.array([b.magnitude_zero_point for b in config.instrument.bands])
    for p, images in zip(params, epochs, strict=True):
        assert OBJECT_KINDS[p.kind] == "star"
        expected = 10.0 ** (-0.4 * (p.star_magnitudes - zero_points))
        measured = aperture_photometry(images.astype(np.float64), 15.0)
        np.testing.assert_allclose(measured, np.broadcast_to(expected, measured.shape), rtol=0.01)


def test_aperture_photometry_subtracts_the_median_outside_the_aperture():
    image = np.full((1, 45, 45), 3.0)
    image[0, 22, 22] += 50.0
    image[0, 0, 0] = 1000.0  # an outlier outside the aperture: the median ignores it
    assert aperture_photometry(image, 15.0)[0] == pytest.approx(50.0)


def test_epoch_background_noise_matches_lenstronomy():
    config = small_config()
    sky = np.array([[21.0, 20.5, 19.8, 18.9], [22.0, 21.2, 20.2, 19.0]])
    sigma, exposure = noise_levels(config, sky)
    for e in range(2):
        for b, band in enumerate(config.instrument.bands):
            reference = SingleBand(
                pixel_scale=config.instrument.pixel_scale_arcsec,
                exposure_time=band.exposure_time_s,
                magnitude_zero_point=band.magnitude_zero_point,
                read_noise=band.read_noise_e,
                ccd_gain=band.ccd_gain,
                sky_brightness=sky[e, b],
                seeing=1.0,
                num_exposures=band.num_exposures,
            )
            assert sigma[e, b] == pytest.approx(reference.background_noise, rel=1e-9)
    bands = config.instrument.bands
    assert exposure.tolist() == [b.exposure_time_s * b.num_exposures for b in bands]
    assert bands[0].exposure_time_s == 200.0  # DES-deep visits (DeepZipper, Table 1)


def test_lensed_supernova_light_curve_rises_and_falls_with_the_images():
    """Noiseless: the background-subtracted aperture flux minus that of the same object without
    its supernova equals the sum of the images' delayed, magnified curves."""
    settings = {
        "instrument.noise": "none",
        "instrument.n_epochs": 6,
        "supernova.explosion_window_days": [-15.0, 0.0],  # bright during these epochs
    }
    config = small_config(**settings)
    renderer = TransientRenderer(config)
    p = draw_transient_params(config, 2, image_rng(11, 2, PARAMS_STREAM))
    assert p.images.count >= 2
    assert np.all(np.hypot(p.images.x, p.images.y) < 15 * 0.263 - 1.0)  # inside the aperture
    with_sn = aperture_photometry(renderer.render([p])[0].astype(np.float64), 15.0)
    dark = copy.deepcopy(p)
    dark.supernova.peak_magnitudes = np.full(4, np.inf)
    without = aperture_photometry(renderer.render([dark])[0].astype(np.float64), 15.0)
    zero_points = np.array([b.magnitude_zero_point for b in config.instrument.bands])
    expected = sum(
        abs(mu) * supernova_light_curve(p.supernova, renderer.times_days, zero_points, delay)
        for mu, delay in zip(p.images.magnification, p.images.delay_days, strict=True)
    )
    assert np.ptp(expected[:, 1]) > 1.0  # the supernova changes over these epochs
    np.testing.assert_allclose(with_sn - without, expected, rtol=0.02, atol=1e-3)


# -- layout, file, reproducibility ---------------------------------------------------------------
def test_layout_has_exact_class_and_split_counts():
    splits, labels = transient_layout(43, (0.7, 0.15, 0.15), seed=2)
    assert np.bincount(labels).tolist() == [11, 11, 11, 10]
    for label in range(4):
        n = int(np.sum(labels == label))
        per_split = np.bincount(splits[labels == label], minlength=3)
        n_train = round(0.7 * n)  # train rounded first, as the substructure engine
        assert per_split.tolist() == [n_train, round(0.15 * n), n - n_train - round(0.15 * n)]
    with pytest.raises(ValueError, match="sum"):
        transient_layout(10, (0.5, 0.2, 0.2), seed=0)


def test_dataset_file_classes_truth_and_inputs(tmp_path):
    config = small_config(**{"instrument.store_epoch_images": True})
    out = simulate(config, tmp_path / "t.h5", n=10, seed=4, batch_size=4).path
    ds = LensDataset(out)
    assert ds.class_names == list(CLASS_NAMES) and ds.image_shape == (4, 45, 45)
    assert np.bincount(ds.labels).tolist() == [3, 3, 2, 2]
    curves = ds.inputs("light_curves")
    epochs = ds.inputs("epoch_images")
    assert curves.shape == (10, 4, 4) and epochs.shape == (10, 4, 4, 45, 45)
    np.testing.assert_allclose(ds.images(), epochs.astype(np.float64).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(
        curves, aperture_photometry(epochs.astype(np.float64), 15.0), rtol=1e-4, atol=1e-2
    )
    kinds = [OBJECT_KINDS[k] for k in ds.truth("object_kind")]
    n_images = ds.truth("n_sn_images")
    for label, kind, count in zip(ds.labels, kinds, n_images, strict=True):
        if label >= 2:
            assert kind == CLASS_NAMES[label] and count >= 2
        elif label == 1:
            assert kind == "galaxy_lens" and count == 0
    delays = ds.truth("time_delays_days")
    assert np.all(np.isnan(delays[n_images == 0]))  # no supernova: padded
    assert np.all(delays[n_images >= 1, 0] == 0)  # delays count from the first image
    for row, count in zip(delays, n_images, strict=True):
        assert np.all(np.isfinite(row[:count])) and np.all(np.isnan(row[count:]))
    assert np.all(np.isfinite(ds.truth("theta_e_arcsec")[ds.labels > 0]))
    assert ds.manifest["epoch_times_days"] == [0.0, 7.0, 14.0, 21.0]


def test_same_seed_same_bytes_for_any_batch_size_and_worker_count(tmp_path):
    config = small_config()
    a = simulate(config, tmp_path / "a.h5", n=9, seed=7, batch_size=9).path
    b = simulate(config, tmp_path / "b.h5", n=9, seed=7, batch_size=2, workers=2).path
    c = simulate(config, tmp_path / "c.h5", n=9, seed=8, batch_size=9).path
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_render_block_is_independent_of_its_neighbours():
    config = small_config()
    renderer = TransientRenderer(config)
    labels = np.arange(6) % 4
    whole = render_block(renderer, 3, 0, 6, labels)
    alone = render_block(renderer, 3, 4, 5, labels[4:5])
    assert np.array_equal(whole.images[4:5], alone.images)
    assert np.array_equal(whole.inputs["light_curves"][4:5], alone.inputs["light_curves"])


def test_bad_settings_are_refused_with_the_setting_named():
    with pytest.raises(ConfigError, match="non_lens_fractions"):
        small_config(non_lens_fractions=[0.5, 0.5, 0.5, 0, 0, 0])
    with pytest.raises(ConfigError, match="aperture_radius_px"):
        small_config(**{"instrument.aperture_radius_px": 40})
    with pytest.raises(ConfigError, match="tau_fall"):
        small_config(**{"supernova.ia.tau_fall_days_rest": [1.0, 1.0, 1.0, 1.0]})


# -- presets and CLI ------------------------------------------------------------------------------
def test_presets_are_registered_and_differ_where_the_surveys_do():
    names = {"transients_des_deep", "transients_desi_dot", "transients_lsst_wide"}
    assert names <= set(preset_names())
    des, dot, lsst = (get_any_preset(n) for n in sorted(names))
    assert des.instrument.cadence_days == 7.0 and dot.instrument.cadence_days == 3.0
    assert lsst.instrument.pixel_scale_arcsec == 0.2
    assert {b.ccd_gain for b in lsst.instrument.bands} == {2.3}
    assert {b.read_noise_e for b in des.instrument.bands} == {7.0}
    assert type(des).from_yaml(des.to_yaml()) == des


def test_cli_simulate_presets_and_errors(tmp_path):
    out = tmp_path / "tr.h5"
    result = runner.invoke(
        app,
        [
            "simulate", "--preset", "transients_desi_dot", "--n", "6", "--out", str(out),
            "--quiet", "--set", "instrument.n_epochs=3", "--batch-size", "4",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ds = LensDataset(out)
    assert len(ds) == 6 and ds.inputs("light_curves").shape == (6, 3, 4)
    assert ds.manifest["preset"] == "transients_desi_dot"
    listing = runner.invoke(app, ["presets"])
    assert "transients_lsst_wide" in listing.output and "lensed transients" in listing.output
    bad = runner.invoke(
        app,
        ["simulate", "--preset", "transients_des_deep", "--n-per-class", "3", "--out",
         str(tmp_path / "x.h5"), "--quiet"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "--n" in bad.output
    assert not (tmp_path / "x.h5").exists()


def test_supernovae_are_kept_only_when_seen():
    """Survey samples hold seen supernovae: with a detection limit (and contrast against the lens
    galaxy) most lensed SNe beat it at some epoch, far more than without the selection."""
    import dataclasses

    from darklens.simulate.transients import get_transient_preset
    from darklens.simulate.transients.sampling import draw_transient_params, peak_image_flux_ratio

    config = get_transient_preset("transients_des_deep")
    assert config.supernova.detection_limit_mag == 24.0
    assert config.supernova.detection_contrast > 0
    blind = dataclasses.replace(
        config, supernova=dataclasses.replace(config.supernova, detection_limit_mag=None)
    )
    for label, floor in ((2, 0.7), (3, 0.4)):  # lensed SN Ia, lensed SN CC
        seen, drawn = (
            [draw_transient_params(c, label, np.random.default_rng(i)) for i in range(12)]
            for c in (config, blind)
        )
        ratio_seen, ratio_drawn = (
            np.array(
                [
                    peak_image_flux_ratio(p.supernova, p.images, config, p.galaxy.magnitudes)
                    for p in group
                ]
            )
            for group in (seen, drawn)
        )
        assert np.mean(ratio_seen > 1) >= floor
        assert np.median(ratio_seen) > 2 * np.median(ratio_drawn)
        assert all(0.5 <= p.z_source <= 1.2 for p in seen)
