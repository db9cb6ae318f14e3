"""Galaxy image banks: folders of .npy/.fits, HDF5 arrays, the built-in Hubble Deep Field bank,
and the errors that name the bad file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from astropy.io import fits

from darklens.data.deeplense import BadInputFile
from darklens.data.hubble_deep_field import half_light_fraction
from darklens.data.image_bank import CORNER_PX, load_image_bank


def _galaxy(shape=(24, 20), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    blob = np.exp(-0.5 * (((yy - shape[0] / 2) / 3) ** 2 + ((xx - shape[1] / 2) / 5) ** 2))
    return 10 * blob + rng.normal(0, 0.01, shape)


def test_folder_of_npy_and_fits_images_in_name_order_with_unit_flux(tmp_path):
    np.save(tmp_path / "b.npy", _galaxy(seed=1))
    fits.PrimaryHDU(_galaxy((30, 30), seed=2).astype(np.float32)).writeto(tmp_path / "a.fits")
    np.save(tmp_path / "c.npy", np.stack([_galaxy(seed=3), 3 * _galaxy(seed=3)], axis=-1))
    (tmp_path / ".hidden").write_text("ignored")
    bank = load_image_bank(str(tmp_path))
    assert [s.rsplit("/", 1)[-1] for s in bank.sources] == ["a.fits", "b.npy", "c.npy"]
    assert [im.shape for im in bank.images] == [(30, 30), (24, 20), (24, 20)]
    for image in bank.images:
        assert image.sum() == pytest.approx(1.0)
    expected = _galaxy(seed=3) * 2  # the mean of the channels, then unit flux
    np.testing.assert_allclose(bank.images[2], expected / expected.sum(), rtol=1e-6)
    assert bank.sha256 != load_image_bank(str(tmp_path), background="corner_median").sha256


def test_hdf5_array_with_channel_last_and_corner_median(tmp_path):
    images = np.stack([np.stack([_galaxy((60, 60), s) + 5.0] * 3, axis=-1) for s in range(3)])
    path = tmp_path / "galaxies.h5"
    with h5py.File(path, "w") as handle:
        handle["cutouts"] = images.astype(np.float32)
    bank = load_image_bank(f"{path}:cutouts", channel=2, background="corner_median")
    assert len(bank) == 3 and bank.images[0].shape == (60, 60)
    raw = images[0, :, :, 2].astype(np.float32).astype(np.float64)
    expected = raw - np.median(raw[:CORNER_PX, :CORNER_PX])
    np.testing.assert_allclose(bank.images[0], expected / expected.sum(), rtol=1e-6)
    packed, offsets, heights, widths = bank.packed()
    assert packed.size == 3 * 3600 and list(offsets) == [0, 3600, 7200]
    assert list(heights) == list(widths) == [60, 60, 60]


@pytest.mark.parametrize(
    "bad, reason",
    [
        (np.full((20, 20), np.nan), "NaN"),
        (np.ones((5, 5)), "sides"),
        (np.ones((20, 2000)), "sides"),
        (np.zeros((20, 20)), "total flux"),
        (np.ones((20, 20, 20, 20)), "shape"),
    ],
)
def test_a_bad_image_fails_naming_its_file(tmp_path, bad, reason):
    np.save(tmp_path / "good.npy", _galaxy())
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(BadInputFile, match=reason) as caught:
        load_image_bank(str(tmp_path))
    assert caught.value.path.name == "bad.npy"


def test_unusable_banks_fail_naming_the_folder_or_file(tmp_path):
    with pytest.raises(BadInputFile, match="no .npy or .fits") as caught:
        load_image_bank(str(tmp_path))
    assert caught.value.path == tmp_path
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BadInputFile, match="not an image file"):
        load_image_bank(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hubble_deep_field"):
        load_image_bank(str(tmp_path / "missing"))
    (tmp_path / "notes.txt").unlink()
    np.save(tmp_path / "x.npy", _galaxy())
    with pytest.raises(BadInputFile, match="channel"):
        load_image_bank(str(tmp_path), channel=3)
    path = tmp_path.parent / f"{tmp_path.name}.h5"
    with h5py.File(path, "w") as handle:
        handle["labels"] = np.arange(3)
    with pytest.raises(BadInputFile, match="no image array 'images'.*labels"):
        load_image_bank(str(path))


def test_builtin_hubble_deep_field_bank():
    bank = load_image_bank("hubble_deep_field")
    assert 50 <= len(bank) <= 128
    for image in bank.images:
        assert image.shape == (64, 64) and np.all(image >= 0)
        assert image.sum() == pytest.approx(1.0)
        assert image[0].sum() + image[-1].sum() + image[:, 0].sum() + image[:, -1].sum() < 0.01
    fractions = [half_light_fraction(image) for image in bank.images]
    assert 0.05 < np.median(fractions) < 0.2  # galaxies fill their boxes alike
    assert len({image.tobytes() for image in bank.images}) == len(bank)
