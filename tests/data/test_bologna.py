"""Bologna Lens Finding Challenge import: band assembly, labels, masks, broken folders, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data import lensfind_folders
from darklens.data.bologna import (
    BolognaError,
    import_bologna,
    iter_bologna_images,
    parse_mask_fill,
    read_classifications,
)
from darklens.data.deeplense import BadInputFile, LayoutError
from darklens.data.h5 import DatasetWriter, LensDataset
from darklens.predict import Predictor
from tests.helpers import FLOAT32_PROBA_TOLERANCE

SIDE = 9
GROUND = ("R", "I", "G", "U")
HEADER = ["ID", "is_lens", "Einstein_area", "numb_pix_lensed_image", "flux_lensed_image_in_sigma"]
runner = CliRunner()


def _band_path(root: Path, survey: str, band: int, image_id: int) -> Path:
    if survey == "ground":
        return root / "Public" / f"Band{band + 1}" / f"imageSDSS_{GROUND[band]}-{image_id}.fits"
    return root / "Public" / "Band1" / f"imageEUC_VIS-{image_id}.fits"


def make_challenge(
    root: Path, survey: str = "ground", n: int = 12, first_id: int = 100000, seed: int = 0
) -> dict[int, dict]:
    """A tiny challenge folder: every other ID a lens, random float32 bands, a label table."""
    rng = np.random.default_rng(seed)
    n_bands = 4 if survey == "ground" else 1
    for band in range(n_bands):
        _band_path(root, survey, band, 0).parent.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k in range(n):
        image_id = first_id + k
        bands = rng.normal(
            10.0 * np.arange(1, n_bands + 1)[:, None, None], 1.0, size=(n_bands, SIDE, SIDE)
        ).astype(np.float32)
        for band in range(n_bands):
            fits.PrimaryHDU(bands[band]).writeto(_band_path(root, survey, band, image_id))
        truth[image_id] = {
            "image": bands,
            "is_lens": k % 2,
            "einstein_area": float(rng.uniform(0, 5)) * (k % 2),
            "pixels": float(rng.integers(0, 200)) * (k % 2),
            "flux": float(rng.uniform(0, 50)) * (k % 2),
        }
    write_csv(root / "classifications.csv", truth)
    return truth


def write_csv(path: Path, truth: dict[int, dict], header=HEADER, float_ids: bool = False) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for image_id, row in truth.items():
            shown = f"{image_id}.0" if float_ids else str(image_id)
            writer.writerow(
                [shown, row["is_lens"], row["einstein_area"], row["pixels"], row["flux"]]
            )


def _import(root: Path, out: Path, **options):
    return import_bologna(root, out, **options)


def test_ground_set_assembles_bands_in_folder_order(tmp_path: Path):
    truth = make_challenge(tmp_path / "ground")
    report = _import(tmp_path / "ground", tmp_path / "g.h5", split=(0.5, 0.25, 0.25))
    assert report.survey == "ground" and report.channels == GROUND
    assert report.image_shape == (4, SIDE, SIDE) and report.n_images == 12
    assert report.skipped == () and report.masked_pixels == 0
    with LensDataset(tmp_path / "g.h5") as ds:
        assert ds.class_names == ["non_lens", "lens"]
        assert ds.manifest["channels"] == list(GROUND)
        assert "channel 0 = Band1 (SDSS R)" in ds.manifest["channel_order"]
        ids = ds.truth("bologna_id")
        assert ids.tolist() == sorted(truth)
        images = ds.images()
        for row, image_id in enumerate(ids):
            expected = truth[int(image_id)]
            np.testing.assert_array_equal(images[row], expected["image"])
            assert ds.labels[row] == expected["is_lens"]
            assert ds.truth("einstein_area")[row] == expected["einstein_area"]
            assert ds.truth("n_lensed_pixels")[row] == expected["pixels"]
            assert ds.truth("lensed_flux")[row] == expected["flux"]
        assert ds.truth("n_masked").tolist() == [0] * 12
        for split in ("train", "val", "test"):  # 6 per class: 2, 2, 2
            index = ds.split_indices(split)
            assert np.bincount(ds.labels[index], minlength=2).tolist() == [2, 2], split


def test_space_set_has_one_band_and_split_is_seeded(tmp_path: Path):
    truth = make_challenge(tmp_path / "space", survey="space", n=20)
    codes = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        report = _import(tmp_path / "space" / "Public", tmp_path / f"{name}.h5", seed=seed)
        assert report.survey == "space" and report.channels == ("VIS",)
        with LensDataset(tmp_path / f"{name}.h5") as ds:
            assert ds.image_shape == (1, SIDE, SIDE)
            codes[name] = ds.split_codes.copy()
            first = truth[int(ds.truth("bologna_id")[0])]["image"]
            np.testing.assert_array_equal(ds.images(slice(0, 1))[0], first)
    np.testing.assert_array_equal(codes["a"], codes["b"])
    assert not np.array_equal(codes["a"], codes["c"])
    assert report.counts == {
        "train": {"non_lens": 8, "lens": 8},
        "val": {"non_lens": 1, "lens": 1},
        "test": {"non_lens": 1, "lens": 1},
    }


@pytest.mark.parametrize("fill", ["zero", "median", -2.5])
def test_masked_pixels_are_counted_and_filled(tmp_path: Path, fill: str | float):
    truth = make_challenge(tmp_path / "c", n=4)
    image_id = 100001
    band = truth[image_id]["image"][2].copy()
    band[0, :5] = 100.0
    band[3, 3] = 100.0
    (path := _band_path(tmp_path / "c", "ground", 2, image_id)).unlink()
    fits.PrimaryHDU(band).writeto(path)
    report = _import(tmp_path / "c", tmp_path / "m.h5", split="test", mask_fill=fill)
    assert report.masked_pixels == 6 and report.masked_images == 1
    with LensDataset(tmp_path / "m.h5") as ds:
        row = int(np.flatnonzero(ds.truth("bologna_id") == image_id)[0])
        assert ds.truth("n_masked").tolist() == [6 if r == row else 0 for r in range(4)]
        stored = ds.images(slice(row, row + 1))[0]
    unmasked = band != 100.0
    expected_fill = {"zero": 0.0, "median": np.median(band[unmasked])}.get(fill, fill)
    np.testing.assert_array_equal(stored[2][~unmasked], np.full(6, expected_fill, np.float32))
    np.testing.assert_array_equal(stored[2][unmasked], band[unmasked])
    np.testing.assert_array_equal(stored[1], truth[image_id]["image"][1])
    assert ds.manifest["mask_fill"] == fill


def test_missing_band_names_the_id_and_file_and_skip_bad_drops_it(tmp_path: Path):
    make_challenge(tmp_path / "c", n=6)
    _band_path(tmp_path / "c", "ground", 2, 100003).unlink()
    with pytest.raises(
        BolognaError,
        match=r"ID 100003: missing band G \(Public/Band3/"
        r"imageSDSS_G-100003\.fits\).*--skip-bad",
    ):
        _import(tmp_path / "c", tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    report = _import(tmp_path / "c", tmp_path / "x.h5", skip_bad=True, split="test")
    assert report.n_images == 5
    assert [(s.path, "band G" in s.reason) for s in report.skipped] == [("ID 100003", True)]
    with LensDataset(tmp_path / "x.h5") as ds:
        assert 100003 not in ds.truth("bologna_id").tolist()
        assert ds.manifest["skipped"][0]["file"] == "ID 100003"


def test_csv_and_files_must_list_the_same_ids(tmp_path: Path):
    truth = make_challenge(tmp_path / "c", n=6)
    for band in range(4):
        _band_path(tmp_path / "c", "ground", band, 100002).unlink()
    fits.PrimaryHDU(truth[100000]["image"][0]).writeto(tmp_path / "c/Public/Band1/x.fits")
    for band in range(4):
        fits.PrimaryHDU(truth[100000]["image"][band]).writeto(
            _band_path(tmp_path / "c", "ground", band, 999)
        )
    with pytest.raises(BolognaError) as info:
        _import(tmp_path / "c", tmp_path / "x.h5")
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "Public/Band1/x.fits: not a challenge image file" in message
    assert "ID 100002: listed in classifications.csv (line 4) but has no FITS files" in message
    assert "ID 999: Public/Band1/imageSDSS_R-999.fits has no row in classifications.csv" in message
    report = _import(tmp_path / "c", tmp_path / "x.h5", skip_bad=True, split="test")
    assert report.n_images == 5 and len(report.skipped) == 3


def test_corrupt_fits_is_named_and_skippable(tmp_path: Path):
    make_challenge(tmp_path / "c", n=6)
    broken = _band_path(tmp_path / "c", "ground", 3, 100004)
    broken.write_bytes(b"SIMPLE  = not really a FITS file")
    with pytest.raises(BadInputFile, match=r"imageSDSS_U-100004\.fits: not a readable FITS"):
        _import(tmp_path / "c", tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists() and not list(tmp_path.glob("*.partial"))
    report = _import(tmp_path / "c", tmp_path / "x.h5", skip_bad=True, split="test")
    assert report.n_images == 5
    assert report.skipped[0].path == "ID 100004"
    assert report.skipped[0].reason.startswith("imageSDSS_U-100004.fits: not a readable FITS")


def test_nan_pixels_and_mismatched_band_shapes_are_bad_files(tmp_path: Path):
    make_challenge(tmp_path / "c", n=4)
    path = _band_path(tmp_path / "c", "ground", 1, 100001)
    path.unlink()
    fits.PrimaryHDU(np.full((SIDE, SIDE), np.nan, np.float32)).writeto(path)
    with pytest.raises(BadInputFile, match=r"imageSDSS_I-100001\.fits: 81 of 81 pixels are NaN"):
        _import(tmp_path / "c", tmp_path / "x.h5")
    path.unlink()
    fits.PrimaryHDU(np.zeros((SIDE, SIDE + 1), np.float32)).writeto(path)
    with pytest.raises(BadInputFile, match=r"imageSDSS_I-100001\.fits: band shape \(9, 10\)"):
        _import(tmp_path / "c", tmp_path / "x.h5")


def test_label_table_columns_are_matched_case_insensitively(tmp_path: Path):
    truth = make_challenge(tmp_path / "c", n=4)
    header = ["id", "IS LENS", "einstein area", "n_pix_lensed", "Lensed-Flux"]
    write_csv(tmp_path / "c" / "labels.csv", truth, header=header, float_ids=True)
    with (tmp_path / "c" / "labels.csv").open("a") as handle:
        handle.write("\n")
    table = read_classifications(tmp_path / "c" / "labels.csv")
    assert table.ids.tolist() == sorted(truth)
    assert sorted(table.truth) == ["einstein_area", "lensed_flux", "n_lensed_pixels"]
    (tmp_path / "c" / "classifications.csv").unlink()
    with pytest.raises(FileNotFoundError, match="darklens predict"):
        _import(tmp_path / "c", tmp_path / "x.h5")
    report = _import(tmp_path / "c", tmp_path / "x.h5", csv=tmp_path / "c" / "labels.csv")
    assert report.n_images == 4


def test_non_numeric_columns_are_left_out_and_reported(tmp_path: Path):
    make_challenge(tmp_path / "c", n=4)
    path = tmp_path / "c" / "classifications.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",comment"] + [line + ",looks like a lens" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    report = _import(tmp_path / "c", tmp_path / "x.h5", split="test")
    assert report.ignored_columns == ("comment",)
    assert "comment" not in report.truth_columns
    with LensDataset(tmp_path / "x.h5") as ds:
        assert ds.manifest["ignored_columns"] == ["comment"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ID,flux\n1,2\n", "no is_lens column"),
        ("ID,is_lens\n1,2\n", "line 2: is_lens must be 0 or 1"),
        ("ID,is_lens\n1,0\n1,1\n", "line 3 repeats ID 1 of line 2"),
        ("ID,is_lens\n1.5,0\n", "line 2: ID '1.5' is not a whole number"),
        ("ID,is_lens\n1,0,7\n", "line 2 has 3 values for 2 columns"),
        ("ID,is_lens\n", "has a header but no rows"),
        (b"\xff\xfe\x00binary", "not a readable CSV text table"),
    ],
)
def test_bad_label_tables_name_the_line(tmp_path: Path, content: str | bytes, message: str):
    path = tmp_path / "labels.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(BolognaError, match=message):
        read_classifications(path)


def test_layout_errors(tmp_path: Path):
    with pytest.raises(LayoutError, match="not a Bologna challenge folder"):
        _import(tmp_path, tmp_path / "x.h5")
    make_challenge(tmp_path / "c", n=2)
    (tmp_path / "c/Public/Band4").rename(tmp_path / "c/Public/Other")
    with pytest.raises(LayoutError, match=r"lacks Band4 \(SDSS U\)"):
        _import(tmp_path / "c", tmp_path / "x.h5")
    make_challenge(tmp_path / "s", survey="space", n=2)
    (tmp_path / "s/Public/Band2").mkdir()
    with pytest.raises(LayoutError, match="has Band2, but the space-based set has only 1"):
        _import(tmp_path / "s", tmp_path / "x.h5")
    for bad_fill in ("mean", float("nan"), True):
        with pytest.raises(ValueError, match="mask_fill must be one of zero, median"):
            _import(tmp_path / "s", tmp_path / "x.h5", mask_fill=bad_fill)
    with pytest.raises(ValueError, match="must sum to 1"):
        _import(tmp_path / "s", tmp_path / "x.h5", split=(0.5, 0.1, 0.1))


def test_streams_in_bounded_blocks(tmp_path: Path, monkeypatch):
    make_challenge(tmp_path / "c", survey="space", n=11)
    monkeypatch.setattr(lensfind_folders, "WRITE_BLOCK", 4)
    sizes = []
    original = DatasetWriter.write

    def spy(self, start, images, *args, **kwargs):
        sizes.append(len(images))
        return original(self, start, images, *args, **kwargs)

    monkeypatch.setattr(DatasetWriter, "write", spy)
    _import(tmp_path / "c", tmp_path / "x.h5")
    assert sizes == [4, 4, 3]


def test_unlabelled_images_stream_by_id(tmp_path: Path):
    truth = make_challenge(tmp_path / "c", n=5)
    (tmp_path / "c" / "classifications.csv").unlink()
    _band_path(tmp_path / "c", "ground", 0, 100002).unlink()
    with pytest.raises(BolognaError, match="ID 100002: missing band R"):
        list(iter_bologna_images(tmp_path / "c"))
    skipped = []
    items = list(iter_bologna_images(tmp_path / "c", skip_bad=True, on_skip=skipped.append))
    assert [image_id for image_id, _ in items] == ["100000", "100001", "100003", "100004"]
    np.testing.assert_array_equal(items[2][1], truth[100003]["image"])
    assert [s.path for s in skipped] == ["ID 100002"]


def test_cli_imports_the_challenge_and_refuses_foreign_options(tmp_path: Path):
    make_challenge(tmp_path / "c", n=8)
    out = tmp_path / "cli.h5"
    result = runner.invoke(
        app,
        [
            "import-lensfind",
            str(tmp_path / "c"),
            "--layout",
            "bologna",
            "--out",
            str(out),
            "--split",
            "0.5,0.25,0.25",
            "--mask-fill",
            "median",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ground-based set, channels R, I, G, U" in result.output
    with LensDataset(out) as ds:
        assert ds.manifest["mask_fill"] == "median" and len(ds.split_indices("test")) == 2
    foreign = runner.invoke(
        app,
        [
            "import-lensfind",
            str(tmp_path / "c"),
            "--layout",
            "bologna",
            "-o",
            str(tmp_path / "y.h5"),
            "--val-fraction",
            "0.2",
        ],
    )
    assert foreign.exit_code == 2 and "--val-fraction" in foreign.output
    _band_path(tmp_path / "c", "ground", 1, 100005).unlink()
    broken = runner.invoke(
        app,
        [
            "import-lensfind",
            str(tmp_path / "c"),
            "--layout",
            "bologna",
            "-o",
            str(tmp_path / "z.h5"),
        ],
    )
    assert broken.exit_code == 2 and "ID 100005: missing band I" in broken.output
    assert "Traceback" not in broken.output


# -- masked pixels when predicting ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"), [("zero", "zero"), (" Median ", "median"), ("-1.5", -1.5), ("0", 0.0)]
)
def test_mask_fill_option_reads_keywords_and_numbers(text: str, expected: str | float):
    assert parse_mask_fill(text) == expected


@pytest.mark.parametrize("text", ["mean", "nan", "inf", ""])
def test_mask_fill_option_refuses_other_text(text: str):
    with pytest.raises(ValueError, match="--mask-fill must be zero, median or a finite number"):
        parse_mask_fill(text)


def _masked_space_folder(root: Path, n: int = 4, side: int = 32) -> np.ndarray:
    """A one-band challenge folder of ``n`` images whose top-left quarter is masked (100)."""
    rng = np.random.default_rng(7)
    images = rng.normal(10.0, 1.0, size=(n, side, side)).astype(np.float32)
    images[:, : side // 2, : side // 2] = 100.0
    (root / "Public" / "Band1").mkdir(parents=True)
    for k, image in enumerate(images):
        fits.PrimaryHDU(image).writeto(_band_path(root, "space", 0, 300000 + k))
    return images


def _predict(run: Path, inputs: list[Path], out: Path, *options: str):
    args = ["predict", "-c", str(run), *map(str, inputs), "-o", str(out), "--quiet", *options]
    return runner.invoke(app, args)


def _probabilities(path: Path) -> np.ndarray:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return np.array([[float(v) for k, v in row.items() if k.startswith("p_")] for row in rows])


def test_predict_fills_masked_pixels_as_asked(trained_run: Path, tmp_path: Path):
    raw = _masked_space_folder(tmp_path / "challenge")
    masked = raw == 100.0
    median = np.stack([np.median(image[~m]) for image, m in zip(raw, masked, strict=True)])
    expected_fills = {"zero": np.zeros(len(raw)), "median": median, "-3": np.full(len(raw), -3.0)}
    predictor = Predictor.from_checkpoint(trained_run)
    scores = {}
    for text, fills in expected_fills.items():
        options = () if text == "zero" else ("--mask-fill", text)
        out = tmp_path / f"{text}.csv"
        result = _predict(trained_run, [tmp_path / "challenge"], out, *options)
        assert result.exit_code == 0, result.output
        filled = np.where(masked, fills[:, None, None].astype(np.float32), raw)[:, None]
        scores[text] = _probabilities(out)
        np.testing.assert_allclose(
            scores[text], predictor.predict_proba(filled), **FLOAT32_PROBA_TOLERANCE
        )
    assert not np.allclose(scores["zero"], scores["median"])  # the option reaches the model


def test_predict_refuses_mask_options_for_other_inputs(trained_run: Path, tmp_path: Path):
    _masked_space_folder(tmp_path / "challenge")
    np.save(tmp_path / "one.npy", np.zeros((32, 32), np.float32))
    out = tmp_path / "out.csv"
    result = _predict(trained_run, [tmp_path / "one.npy"], out, "--mask-fill", "median")
    assert result.exit_code == 2 and "apply only to a Bologna challenge folder" in result.output
    result = _predict(trained_run, [tmp_path / "challenge"], out, "--mask-fill", "mean")
    assert result.exit_code == 2 and "--mask-fill must be zero, median" in result.output
    assert not out.exists()
