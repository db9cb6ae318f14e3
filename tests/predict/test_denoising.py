"""darklens denoise: files of each kind written beside their inputs' structure."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.predict import Denoiser
from darklens.predict.denoising import denoise_files
from darklens.predict.inputs import BadInputError

runner = CliRunner()


def test_each_file_kind_is_denoised_keeping_its_structure(denoise_run, regression_h5, tmp_path):
    with LensDataset(regression_h5) as data:
        images = data.images(np.arange(3))
        radius = data.truth("ring_radius_px")
        labels, splits = data.labels.copy(), data.split_codes.copy()
    np.save(tmp_path / "stack.npy", images[:, 0])  # [N, H, W]
    header = fits.Header({"OBJECT": "ring", "EXPTIME": 90.0})
    fits.HDUList([fits.PrimaryHDU(images[0, 0], header)]).writeto(tmp_path / "one.fits")
    inputs = [tmp_path / "stack.npy", tmp_path / "one.fits", regression_h5]
    written = denoise_files(denoise_run, inputs, tmp_path / "out")
    assert [p.name for p in written] == ["stack.npy", "one.fits", regression_h5.name]
    expected = Denoiser.from_checkpoint(denoise_run).denoise(images)
    np.testing.assert_allclose(np.load(written[0]), expected[:, 0], rtol=1e-5, atol=1e-6)
    with fits.open(written[1]) as hdus:
        assert hdus[0].header["OBJECT"] == "ring" and hdus[0].header["EXPTIME"] == 90.0
        np.testing.assert_allclose(hdus[0].data, expected[0, 0], rtol=1e-5, atol=1e-6)
    with LensDataset(written[2]) as out:
        np.testing.assert_allclose(out.images(np.arange(3)), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out.truth("ring_radius_px"), radius)
        np.testing.assert_array_equal(out.labels, labels)
        np.testing.assert_array_equal(out.split_codes, splits)
        assert out.manifest["denoised_by"] == str(denoise_run)
    with pytest.raises(FileExistsError, match="--overwrite"):
        denoise_files(denoise_run, inputs[:1], tmp_path / "out")


def test_bad_inputs_are_refused_naming_the_file(denoise_run, tmp_path):
    (tmp_path / "bad.fits").write_text("not fits")
    with pytest.raises(BadInputError, match="bad.fits: not a readable FITS file"):
        denoise_files(denoise_run, tmp_path / "bad.fits", tmp_path / "out")
    np.save(tmp_path / "last.npy", np.zeros((32, 32, 3), np.float32))
    with pytest.raises(BadInputError, match="channel-last"):
        denoise_files(denoise_run, tmp_path / "last.npy", tmp_path / "out")
    np.save(tmp_path / "nan.npy", np.full((8, 8), np.nan, np.float32))
    with pytest.raises(BadInputError, match="nan.npy: .*NaN"):
        denoise_files(denoise_run, tmp_path / "nan.npy", tmp_path / "out")
    with pytest.raises(ValueError, match="overwrite its input"):
        denoise_files(denoise_run, tmp_path / "nan.npy", tmp_path)


def test_denoise_cli(denoise_run, regression_run, tmp_path):
    np.save(tmp_path / "img.npy", np.ones((24, 24), np.float32))
    ok = runner.invoke(
        app,
        [
            "denoise",
            "-c",
            str(denoise_run),
            str(tmp_path / "img.npy"),
            "-o",
            str(tmp_path / "o"),
            "--quiet",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert np.load(tmp_path / "o" / "img.npy").shape == (24, 24)
    for args, message in [
        (["-c", str(denoise_run), str(tmp_path / "missing.npy")], "no file or folder"),
        (["-c", str(regression_run), str(tmp_path / "img.npy")], "not a 'denoise' one"),
        (["-c", str(denoise_run), str(tmp_path / "img.npy")], "exists"),
    ]:
        result = runner.invoke(app, ["denoise", *args, "-o", str(tmp_path / "o"), "--quiet"])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
