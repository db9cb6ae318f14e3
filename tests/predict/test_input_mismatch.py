"""Mismatched data is refused, not scored silently (issue 12, item 8)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from astropy.io import fits

from darklens.data.description import (
    InputDescription,
    InputMismatchError,
    band_order,
    describe_dataset,
    mismatches,
)
from darklens.evaluate.run import evaluate_checkpoint
from darklens.models import create_model
from darklens.predict import Predictor
from darklens.predict.batch import predict_files
from darklens.runs import save_checkpoint
from tests.data.test_bologna import GROUND, SIDE, make_challenge


def _with_description(trained_run: Path, folder: Path, **fields) -> Path:
    """A copy of the run's best checkpoint whose input description has ``fields`` (None:
    without the entry, as checkpoints of older darklens)."""
    folder.mkdir()
    for name in ("best.json", "best.safetensors"):
        shutil.copy(trained_run / name, folder / name)
    meta = json.loads((folder / "best.json").read_text())
    if fields.get("remove"):
        del meta["input_description"]
    else:
        meta["input_description"].update(fields)
    (folder / "best.json").write_text(json.dumps(meta))
    return folder


def _manifest(path: Path, **fields) -> Path:
    with h5py.File(path, "r+") as f:
        manifest = json.loads(f.attrs["manifest"])
        manifest.update(fields)
        f.attrs["manifest"] = json.dumps(manifest)
    return path


def test_band_order_and_mismatches():
    assert band_order(("u", "g", "r", "i"), ("R", "I", "G", "U")) == [3, 2, 0, 1]
    assert band_order(("u", "g", "r", "i"), ("g", "r", "i", "z")) is None
    model_ii = InputDescription(("VIS",), 0.05, (64, 64), "e-/s per pixel", "model_ii")
    model_iii = InputDescription(None, 0.08, (64, 64), "e-/s per pixel", "model_iii")
    assert mismatches(model_ii, model_iii) == [
        'pixel scale 0.08" but the model was trained at 0.05" (model_ii)'
    ]
    assert mismatches(model_ii, InputDescription()) == []  # nothing known: nothing to compare
    wider = InputDescription(("VIS",), 0.05, (128, 128), "e-/s per pixel")
    assert mismatches(model_ii, wider) == [
        "128x128 px images (another field of view at the same pixel scale) but the model was "
        "trained on 64x64 px"
    ]
    unscaled = InputDescription(("VIS",), None, (128, 128))
    assert mismatches(model_ii, unscaled) == []  # no pixel scale: resized with a warning


def test_description_comes_from_the_manifest():
    manifest = {
        "preset": "lensfind_ground", "band_names": ["u", "g", "r", "i"],
        "pixel_scale_arcsec": 0.2, "image_units": "e-/s per pixel",
    }
    assert describe_dataset(manifest, (4, 101, 101)) == InputDescription(
        ("u", "g", "r", "i"), 0.2, (101, 101), "e-/s per pixel", "lensfind_ground"
    )
    nested = {"config": {"instrument": {"pixel_scale_arcsec": 0.08}}, "channels": ["R"]}
    assert describe_dataset(nested, (1, 64, 64)).pixel_scale_arcsec == 0.08
    assert describe_dataset(nested, (1, 64, 64)).band_names == ("R",)


def test_checkpoints_record_their_training_data(trained_run, toy_h5):
    predictor = Predictor.from_checkpoint(trained_run)
    assert predictor.input_description_ == describe_dataset({"toy": True}, (1, 32, 32))


def test_evaluate_refuses_another_pixel_scale_unless_allowed(trained_run, toy_h5, tmp_path):
    run = _with_description(trained_run, tmp_path / "run", pixel_scale_arcsec=0.05,
                            preset="model_ii")
    data = _manifest(shutil.copy(toy_h5, tmp_path / "m3.h5"), pixel_scale_arcsec=0.08)
    with pytest.raises(InputMismatchError, match=r'pixel scale 0.08" but .* 0.05" \(model_ii\)'):
        evaluate_checkpoint(run, data, tmp_path / "report")
    assert not (tmp_path / "report").exists()
    with pytest.warns(UserWarning, match="scored anyway"):
        evaluate_checkpoint(run, data, tmp_path / "report", allow_mismatch=True)
    assert (tmp_path / "report" / "report.html").is_file()


def test_predict_refuses_a_dataset_of_other_bands(trained_run, toy_h5, tmp_path):
    run = _with_description(trained_run, tmp_path / "run", band_names=["VIS"])
    data = _manifest(shutil.copy(toy_h5, tmp_path / "r.h5"), band_names=["r"])
    with pytest.raises(InputMismatchError, match="bands r but the model was trained on VIS"):
        predict_files(run, [data], tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()


def test_old_checkpoint_without_description_loads_and_warns_once(trained_run, toy_h5, tmp_path):
    run = _with_description(trained_run, tmp_path / "old", remove=True)
    assert Predictor.from_checkpoint(run).input_description_ is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_files(run, [toy_h5], tmp_path / "a.csv")
        predict_files(run, [toy_h5], tmp_path / "b.csv", overwrite=True)
    unknown = [w for w in caught if "does not record its input" in str(w.message)]
    assert len(unknown) == 1


def _fits_with_wcs(path: Path, image: np.ndarray, scale_arcsec: float, ra: float, dec: float):
    header = fits.Header()
    header.update(
        CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CUNIT1="deg", CUNIT2="deg",
        CRVAL1=ra, CRVAL2=dec, CRPIX1=(image.shape[1] + 1) / 2, CRPIX2=(image.shape[0] + 1) / 2,
        CDELT1=-scale_arcsec / 3600, CDELT2=scale_arcsec / 3600,
    )
    fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(path)


def test_fits_wcs_is_checked_and_gives_ra_dec(trained_run, tmp_path):
    run = _with_description(trained_run, tmp_path / "run", pixel_scale_arcsec=0.05)
    image = np.random.default_rng(0).normal(size=(32, 32))
    _fits_with_wcs(tmp_path / "far.fits", image, 0.08, 150.0, 2.0)
    with pytest.raises(InputMismatchError, match=r"far.fits does not match .*pixel scale 0.08"):
        predict_files(run, [tmp_path / "far.fits"], tmp_path / "p.csv")
    _fits_with_wcs(tmp_path / "near.fits", image, 0.05, 150.0, 2.0)
    np.save(tmp_path / "plain.npy", image.astype(np.float32))
    out = tmp_path / "ok.csv"
    predict_files(run, [tmp_path / "near.fits", tmp_path / "plain.npy"], out)
    rows = out.read_text().splitlines()
    header = rows[0].split(",")
    near = dict(zip(header, rows[1].split(","), strict=True))
    plain = dict(zip(header, rows[2].split(","), strict=True))
    assert float(near["ra_deg"]) == pytest.approx(150.0, abs=1e-9)
    assert float(near["dec_deg"]) == pytest.approx(2.0, abs=1e-9)
    assert plain["ra_deg"] == "" and plain["dec_deg"] == ""


def test_bologna_bands_are_reordered_to_the_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("deeplense_cnn", in_chans=4, num_classes=2, img_size=16)
    meta = {
        "model": {"name": "deeplense_cnn",
                  "kwargs": {"in_chans": 4, "num_classes": 2, "img_size": 16}},
        "preprocessing": {"normalization": "none", "mean": None, "std": None, "img_size": 16,
                          "in_chans": 4, "data_image_shape": [SIDE, SIDE]},
        "class_names": ["non_lens", "lens"],
        "input_description": InputDescription(("u", "g", "r", "i"), 0.2).to_dict(),
    }
    save_checkpoint(tmp_path / "ugri", model, meta)
    truth = make_challenge(tmp_path / "challenge", "ground", n=3)
    out = tmp_path / "scores.csv"
    predict_files(tmp_path / "ugri", [tmp_path / "challenge"], out)
    stored = np.stack([truth[k]["image"] for k in sorted(truth)])  # bands R, I, G, U
    order = [GROUND.index(b) for b in ("U", "G", "R", "I")]
    expected = Predictor.from_checkpoint(tmp_path / "ugri").predict_proba(stored[:, order])
    as_stored = Predictor.from_checkpoint(tmp_path / "ugri").predict_proba(stored)
    assert np.abs(expected - as_stored).max() > 1e-4  # the order matters to this model
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    got = np.array([[float(r[1]), float(r[2])] for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
