"""Prediction inputs (.h5, .npy, .npz, FITS, folders), bad files, and the predict command."""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.predict import Predictor
from darklens.predict.batch import predict_files
from darklens.predict.inputs import (
    BadInputError,
    PredictionInputs,
    expand_inputs,
    iter_blocks,
    iter_images,
)
from darklens.runs import load_checkpoint, save_checkpoint
from tests.helpers import FLOAT32_PROBA_TOLERANCE

SIDE = 12  # image side (px); > 4 so the channel axis is unambiguous
runner = CliRunner()


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _read_all(*inputs, **options) -> list[tuple[str, np.ndarray]]:
    return list(iter_images([str(p) for p in inputs], **options))


class _ShellCall:
    """Pickles to os.system("touch target"): what a malicious .npy would carry."""

    def __init__(self, target: Path) -> None:
        self.command = f"touch {target}"

    def __reduce__(self):
        return (os.system, (self.command,))


# -- single files --------------------------------------------------------------------------------
def test_npy_single_images_in_every_layout(tmp_path):
    image = _rng().normal(size=(SIDE, SIDE)).astype(np.float64)
    cube = _rng(1).normal(size=(3, SIDE, SIDE)).astype(np.float32)
    np.save(tmp_path / "hw.npy", image)
    np.save(tmp_path / "chw.npy", cube)
    np.save(tmp_path / "hwc.npy", np.moveaxis(cube, 0, -1))
    np.save(tmp_path / "int.npy", np.arange(SIDE * SIDE, dtype=np.int16).reshape(SIDE, SIDE))
    items = dict(_read_all(*(tmp_path / n for n in ("hw.npy", "chw.npy", "hwc.npy", "int.npy"))))
    assert list(items) == [str(tmp_path / n) for n in ("hw.npy", "chw.npy", "hwc.npy", "int.npy")]
    np.testing.assert_array_equal(items[str(tmp_path / "hw.npy")], image[None].astype(np.float32))
    np.testing.assert_array_equal(items[str(tmp_path / "chw.npy")], cube)
    np.testing.assert_array_equal(items[str(tmp_path / "hwc.npy")], cube)
    assert items[str(tmp_path / "int.npy")][0, 1, 2] == SIDE + 2
    assert all(v.dtype == np.float32 for v in items.values())


def test_npy_stacks_give_one_item_per_image(tmp_path):
    stack3 = _rng().normal(size=(6, SIDE, SIDE)).astype(np.float32)  # (N, H, W), N > 4
    stack4 = _rng(1).normal(size=(3, 2, SIDE, SIDE)).astype(np.float32)  # (N, C, H, W)
    np.save(tmp_path / "nhw.npy", stack3)
    np.save(tmp_path / "nchw.npy", stack4)
    items = _read_all(tmp_path / "nhw.npy", tmp_path / "nchw.npy")
    ids = [i for i, _ in items]
    assert ids == [f"{tmp_path / 'nhw.npy'}[{k}]" for k in range(6)] + [
        f"{tmp_path / 'nchw.npy'}[{k}]" for k in range(3)
    ]
    np.testing.assert_array_equal(np.stack([im for _, im in items[:6]]), stack3[:, None])
    np.testing.assert_array_equal(np.stack([im for _, im in items[6:]]), stack4)


def test_deeplense_pair_is_read_and_malicious_pickle_refused(tmp_path):
    image = _rng().normal(size=(SIDE, SIDE)).astype(np.float32)
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = image, 1e-23
    np.save(tmp_path / "axion.npy", pair, allow_pickle=True)
    ((source, read),) = _read_all(tmp_path / "axion.npy")
    assert source == str(tmp_path / "axion.npy")
    np.testing.assert_array_equal(read, image[None])

    marker = tmp_path / "pwned"
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = image, _ShellCall(marker)
    np.save(tmp_path / "evil.npy", evil, allow_pickle=True)
    with pytest.raises(BadInputError, match=r"evil\.npy.*refusing to unpickle") as err:
        _read_all(tmp_path / "evil.npy")
    assert err.value.source == str(tmp_path / "evil.npy")
    assert not marker.exists()


def test_npz_every_array_or_one_key(tmp_path):
    single = _rng().normal(size=(SIDE, SIDE)).astype(np.float32)
    stack = _rng(1).normal(size=(2, 1, SIDE, SIDE)).astype(np.float32)
    path = tmp_path / "several.npz"
    np.savez(path, first=single, second=stack)
    items = _read_all(path)
    assert [i for i, _ in items] == [f"{path}:first", f"{path}:second[0]", f"{path}:second[1]"]
    np.testing.assert_array_equal(items[0][1], single[None])
    np.testing.assert_array_equal(np.stack([im for _, im in items[1:]]), stack)
    only = _read_all(path, npz_key="second")
    assert [i for i, _ in only] == [f"{path}:second[0]", f"{path}:second[1]"]
    with pytest.raises(BadInputError, match=r"several\.npz: has no array 'third'.*first, second"):
        _read_all(path, npz_key="third")


def test_fits_images_cubes_and_gzip(tmp_path):
    image = _rng().normal(size=(SIDE, SIDE)).astype(">f4")
    cube = _rng(1).normal(size=(3, SIDE, SIDE))
    fits.PrimaryHDU(image).writeto(tmp_path / "one.fits")
    # a cube in an extension after a data-less primary HDU
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube)]).writeto(tmp_path / "cube.fit")
    fits.PrimaryHDU(image).writeto(tmp_path / "zipped.fits.gz")  # astropy gzips by the name
    assert (tmp_path / "zipped.fits.gz").read_bytes()[:2] == b"\x1f\x8b"
    items = dict(
        _read_all(tmp_path / "one.fits", tmp_path / "cube.fit", tmp_path / "zipped.fits.gz")
    )
    np.testing.assert_array_equal(items[str(tmp_path / "one.fits")], image[None].astype(np.float32))
    np.testing.assert_allclose(items[str(tmp_path / "cube.fit")], cube, rtol=1e-6)
    np.testing.assert_array_equal(items[str(tmp_path / "zipped.fits.gz")], image[None])


def test_fits_without_usable_image_is_named(tmp_path):
    nan_image = np.ones((SIDE, SIDE))
    nan_image[3, 4] = np.nan
    fits.PrimaryHDU(nan_image).writeto(tmp_path / "blank.fits")
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.ones(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(BadInputError, match=r"blank\.fits: 1 of 144 pixels are NaN"):
        _read_all(tmp_path / "blank.fits")
    with pytest.raises(BadInputError, match=r"table\.fits: holds no image HDU"):
        _read_all(tmp_path / "table.fits")


def test_dataset_images_all_or_one_split(toy_h5):
    with LensDataset(toy_h5) as dataset:
        test_index = dataset.split_indices("test")
        expected = dataset.images(test_index)
        n_all = len(dataset)
    items = _read_all(toy_h5, split="test")
    assert [i for i, _ in items] == [f"{toy_h5}[{k}]" for k in test_index]
    np.testing.assert_array_equal(np.stack([im for _, im in items]), expected)
    assert len(_read_all(toy_h5)) == n_all
    with pytest.raises(BadInputError, match="unknown split 'tset'"):
        _read_all(toy_h5, split="tset")


# -- folders, bad files, skipping ----------------------------------------------------------------
def _mixed_folder(root: Path) -> Path:
    rng = _rng(3)
    root.mkdir()
    np.save(root / "a.npy", rng.normal(size=(SIDE, SIDE)))
    fits.PrimaryHDU(rng.normal(size=(SIDE, SIDE))).writeto(root / "b.fits")
    np.savez(root / "c.npz", x=rng.normal(size=(SIDE, SIDE)))
    (root / "notes.txt").write_text("not an image")
    np.save(root / ".hidden.npy", rng.normal(size=(SIDE, SIDE)))
    (root / "sub").mkdir()
    np.save(root / "sub" / "d.npy", rng.normal(size=(SIDE, SIDE)))
    return root


def test_folder_mixing_formats_sorted_and_recursive(tmp_path):
    root = _mixed_folder(tmp_path / "mixed")
    flat = [i for i, _ in _read_all(root)]
    assert flat == [str(root / "a.npy"), str(root / "b.fits"), f"{root / 'c.npz'}:x"]
    deep = [i for i, _ in _read_all(root, recursive=True)]
    assert deep == [*flat, str(root / "sub" / "d.npy")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no input files .* in folder .*empty"):
        list(expand_inputs([tmp_path / "empty"]))
    with pytest.raises(FileNotFoundError, match="missing"):
        list(expand_inputs([tmp_path / "missing.npy"]))


def test_bad_files_are_named_or_skipped_and_reported(tmp_path):
    root = tmp_path / "cutouts"
    root.mkdir()
    np.save(root / "good.npy", _rng().normal(size=(SIDE, SIDE)))
    (root / "corrupt.npy").write_bytes(b"definitely not numpy")
    np.save(root / "flags.npy", np.ones((SIDE, SIDE), dtype=bool))
    stack = _rng(1).normal(size=(5, SIDE, SIDE))
    stack[2, 0, 0] = np.inf
    np.save(root / "stack.npy", stack)
    with pytest.raises(BadInputError, match=r"corrupt\.npy: not a \.npy file"):
        _read_all(root)
    seen = []
    inputs = PredictionInputs([root], skip_bad=True, on_skip=seen.append)
    ids = [i for i, _ in inputs]
    assert ids == [str(root / "good.npy")] + [f"{root / 'stack.npy'}[{k}]" for k in (0, 1, 3, 4)]
    assert seen == inputs.skipped
    reasons = {s.source: s.reason for s in inputs.skipped}
    assert set(reasons) == {
        str(root / "corrupt.npy"),
        str(root / "flags.npy"),
        f"{root / 'stack.npy'}[2]",
    }
    assert "unsupported dtype bool" in reasons[str(root / "flags.npy")]
    assert "NaN or infinite" in reasons[f"{root / 'stack.npy'}[2]"]


def test_unsupported_type_and_channel_mismatch_are_bad_inputs(tmp_path):
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(BadInputError, match=r"image\.png: unsupported file type"):
        _read_all(tmp_path / "image.png")
    np.save(tmp_path / "rgb.npy", _rng().normal(size=(3, SIDE, SIDE)))
    with pytest.raises(BadInputError, match=r"rgb\.npy: has 3 channel\(s\).*model takes 1"):
        _read_all(tmp_path / "rgb.npy", in_chans=1)


def test_blocks_split_on_size_and_shape():
    small, big = np.zeros((1, 8, 8), np.float32), np.zeros((1, 9, 9), np.float32)
    items = [("a", small), ("b", small), ("c", small), ("d", big), ("e", big)]
    blocks = list(iter_blocks(items, 2))
    assert [ids for ids, _ in blocks] == [["a", "b"], ["c"], ["d", "e"]]
    assert [b.shape for _, b in blocks] == [(2, 1, 8, 8), (1, 1, 8, 8), (2, 1, 9, 9)]


# -- predictions ---------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_predict_cli_round_trip(trained_run, toy_h5, tmp_path):
    with LensDataset(toy_h5) as dataset:
        test_index = dataset.split_indices("test")
        images = dataset.images(test_index)
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k in range(4):
        np.save(folder / f"img{k}.npy", images[k, 0])
    out = tmp_path / "preds.csv"
    args = ["predict", "-c", str(trained_run), str(folder), str(toy_h5), "--split", "test"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"wrote {4 + len(test_index)} rows" in result.output
    rows = _read_csv(out)
    classes = ["no_sub", "cdm", "axion"]
    assert list(rows[0]) == ["id", *[f"p_{c}" for c in classes], "predicted", "confidence"]
    assert [r["id"] for r in rows] == [str(folder / f"img{k}.npy") for k in range(4)] + [
        f"{toy_h5}[{k}]" for k in test_index
    ]
    proba = np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-8)
    assert [r["predicted"] for r in rows] == [classes[k] for k in proba.argmax(1)]
    np.testing.assert_allclose([float(r["confidence"]) for r in rows], proba.max(1), atol=1e-9)
    expected = Predictor.from_checkpoint(trained_run).predict_proba(images)
    np.testing.assert_allclose(proba[:4], expected[:4], **FLOAT32_PROBA_TOLERANCE)
    np.testing.assert_allclose(proba[4:], expected, **FLOAT32_PROBA_TOLERANCE)

    again = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert again.exit_code == 2 and "exists" in again.output


def test_predict_cli_skip_bad(trained_run, tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    np.save(folder / "good.npy", _rng().normal(size=(32, 32)))
    (folder / "broken.npy").write_bytes(b"garbage")
    out = tmp_path / "preds.csv"
    strict = runner.invoke(app, ["predict", "-c", str(trained_run), str(folder), "-o", str(out)])
    assert strict.exit_code == 2
    assert "broken.npy" in strict.output and not out.exists()
    assert not (tmp_path / "preds.csv.partial").exists()
    lenient = runner.invoke(
        app, ["predict", "-c", str(trained_run), str(folder), "-o", str(out), "--skip-bad"]
    )
    assert lenient.exit_code == 0, lenient.output
    assert "skipped" in lenient.output and "broken.npy" in lenient.output
    assert [r["id"] for r in _read_csv(out)] == [str(folder / "good.npy")]


def _perturbed_copy(run: Path, out_dir: Path) -> Path:
    """A checkpoint like ``run``'s best with every weight nudged: a second ensemble member."""
    model, meta = load_checkpoint(run)
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    save_checkpoint(out_dir / "best", model, meta)
    return out_dir


def test_predict_ensemble_averages_and_rejects_bad_outputs(trained_run, tmp_path, monkeypatch):
    images = _rng().normal(size=(3, 1, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    other = _perturbed_copy(trained_run, tmp_path / "other")
    out = tmp_path / "ens.csv"
    assert predict_files([trained_run, other], [tmp_path / "x.npy"], out) == 3
    first = Predictor.from_checkpoint(trained_run).predict_proba(images)
    second = Predictor.from_checkpoint(other).predict_proba(images)
    assert np.abs(first - second).max() > 1e-3  # the members really differ
    got = np.array([[float(v) for k, v in r.items() if k.startswith("p_")] for r in _read_csv(out)])
    np.testing.assert_allclose(got, (first + second) / 2, **FLOAT32_PROBA_TOLERANCE)
    with pytest.raises(ValueError, match=r"must end in \.csv or \.parquet"):
        predict_files(trained_run, [tmp_path / "x.npy"], tmp_path / "p.xlsx")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(ValueError, match="needs pyarrow"):
        predict_files(trained_run, [tmp_path / "x.npy"], tmp_path / "p.parquet")


def test_predict_parquet_when_pyarrow_is_installed(trained_run, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    np.save(tmp_path / "x.npy", _rng().normal(size=(2, 1, 32, 32)))
    out = tmp_path / "p.parquet"
    assert predict_files(trained_run, [tmp_path / "x.npy"], out) == 2
    table = pq.read_table(out).to_pydict()
    assert table["id"] == [f"{tmp_path / 'x.npy'}[0]", f"{tmp_path / 'x.npy'}[1]"]
    total = np.add.reduce([np.array(table[f"p_{c}"]) for c in ("no_sub", "cdm", "axion")])
    np.testing.assert_allclose(total, 1.0, atol=1e-8)
