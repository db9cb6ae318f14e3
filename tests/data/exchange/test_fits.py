"""FITS exports: byte-exact round trips, headers with pixel scale and bands, cutouts that
darklens predict reads, and clear errors for folders that are not FITS exports."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from darklens.data.exchange import ExchangeError, export_fits, import_exchange
from darklens.data.h5 import LensDataset
from darklens.predict.inputs import PredictionInputs
from tests.helpers import sha256


@pytest.mark.parametrize("preset", ["model_ii", "lensfind_ground", "transients_des_deep"])
def test_export_then_import_gives_back_the_same_file_bytes(datasets, preset, tmp_path):
    original = datasets[preset]
    n = export_fits(original, tmp_path / "fits")
    assert n == len(LensDataset(original))
    done = import_exchange(tmp_path / "fits", tmp_path / "back.h5")
    assert done.layout == "fits" and done.n_images == n
    assert sha256(tmp_path / "back.h5") == sha256(original)


def test_headers_carry_pixel_scale_bands_and_provenance(datasets, tmp_path):
    original = LensDataset(datasets["lensfind_ground"])
    export_fits(original, tmp_path / "fits")
    row = int(original.split_indices("val")[0])
    name = original.class_names[original.labels[row]]
    path = tmp_path / "fits" / "images" / "val" / name / f"{row:02d}.fits"
    with fits.open(path) as hdus:
        header, data = hdus[0].header, hdus[0].data
    assert data.shape == (4, 16, 16)
    np.testing.assert_array_equal(data, original.images([row])[0])
    assert header["PIXSCALE"] == original.manifest["pixel_scale_arcsec"] == 0.2
    bands = [header[f"BAND{k}"] for k in range(1, header["NBANDS"] + 1)]
    assert bands == original.manifest["band_names"]
    assert (header["CLASS"], header["SPLIT"], header["DLINDEX"]) == (name, "val", row)
    assert header["PRESET"] == "lensfind_ground" and header["DLSEED"] == 5
    one_band = LensDataset(datasets["model_ii"])
    export_fits(one_band, tmp_path / "one")
    first = sorted((tmp_path / "one" / "images" / "train").rglob("*.fits"))[0]
    with fits.open(first) as hdus:
        assert hdus[0].data.ndim == 2 and hdus[0].header["FILTER"] == "euclid_vis"
        assert hdus[0].header["PIXSCALE"] == pytest.approx(0.101)


def test_prediction_reads_the_cutouts_as_the_dataset_holds_them(datasets, tmp_path):
    original = LensDataset(datasets["lensfind_ground"])
    export_fits(original, tmp_path / "fits", split="test")
    items = list(PredictionInputs([tmp_path / "fits" / "images"], recursive=True))
    rows = original.split_indices("test")
    assert len(items) == rows.size
    by_index = {int(item_id.rsplit("/", 1)[1].split(".")[0]): image for item_id, image in items}
    for row in rows:
        np.testing.assert_array_equal(by_index[int(row)], original.images([row])[0])


def test_missing_or_foreign_files_are_named(datasets, tmp_path):
    export_fits(datasets["model_ii"], tmp_path / "fits")
    victim = sorted((tmp_path / "fits" / "images" / "train").rglob("*.fits"))[1]
    victim.unlink()
    with pytest.raises(ExchangeError, match=f"{victim.name}: not a readable FITS image"):
        import_exchange(tmp_path / "fits", tmp_path / "a.h5")
    assert not (tmp_path / "a.h5").exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    fits.PrimaryHDU(np.zeros((8, 8), np.float32)).writeto(plain / "x.fits")
    with pytest.raises(ExchangeError, match="plain is not a darklens export"):
        import_exchange(plain, tmp_path / "b.h5")
