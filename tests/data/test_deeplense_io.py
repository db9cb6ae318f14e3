"""DeepLense folder layouts: import every community layout, reject bad files, export round trip."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data import deeplense
from darklens.data.deeplense import (
    CLASS_NAMES,
    BadInputFile,
    LayoutError,
    export_deeplense,
    import_deeplense,
    read_deeplense_file,
    to_chw,
)
from darklens.data.h5 import DatasetWriter, LensDataset

SIDE = 8
CANONICAL = {"no": "no_sub", "sphere": "cdm", "vort": "axion"}


def _pair(image: np.ndarray, mass: float) -> np.ndarray:
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = image, mass
    return pair


def _make_tree(root: Path, folders: dict[str, int], *, shape=(SIDE, SIDE), dtype=np.float64,
               axion_pairs: bool = False, seed: int = 0) -> dict[str, tuple[np.ndarray, float]]:
    """Write ``count`` random images into each ``folder`` (relative to root).

    Returns {relative file path: (array as saved, mass or NaN)} for checking the import.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for folder, count in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            if np.dtype(dtype).kind == "f":
                image = rng.random(shape).astype(dtype)
            else:
                image = rng.integers(0, 255, size=shape).astype(dtype)
            relative = f"{folder}/img_{i:03d}.npy"
            mass = float("nan")
            if axion_pairs and Path(folder).name.lower() == "axion":
                mass = float(10 ** rng.uniform(-24, -22))
                np.save(root / relative, _pair(image, mass), allow_pickle=True)
            else:
                np.save(root / relative, image)
            written[relative] = (image, mass)
    return written


def _expected_chw(array: np.ndarray) -> np.ndarray:
    """Independent channel rule for the test data: 2-D gets a channel axis, trailing C moves."""
    if array.ndim == 2:
        return array[None].astype(np.float32)
    if array.shape[-1] < array.shape[0]:
        return np.transpose(array, (2, 0, 1)).astype(np.float32)
    return array.astype(np.float32)


def _check_dataset(out: Path, written: dict, split_of, label_of) -> LensDataset:
    ds = LensDataset(out)
    assert ds.class_names == list(CLASS_NAMES)
    sources = ds.manifest["source_files"]
    assert sorted(sources) == sorted(written)
    assert ds.manifest["files"] == len(written) == len(ds)
    images = ds.images()
    masses = ds.truth("axion_mass_ev")
    index = ds.truth("source_index")
    for row, source_idx in enumerate(index):
        relative = sources[source_idx]
        array, mass = written[relative]
        np.testing.assert_array_equal(images[row], _expected_chw(array))
        assert ds.split_names[ds.split_codes[row]] == split_of(relative)
        assert CLASS_NAMES[ds.labels[row]] == label_of(relative)
        np.testing.assert_array_equal(masses[row], mass)
    return ds


def _class_of(relative: str) -> str:
    folder = relative.split("/")[-2].lower()
    return {"no": "no_sub", "none": "no_sub", "sphere": "cdm", "vort": "axion"}.get(folder, folder)


# -- layouts ---------------------------------------------------------------------------------------
def test_flat_layout_is_all_train(tmp_path):
    written = _make_tree(tmp_path / "in", {"no_sub": 2, "cdm": 3, "axion": 2})
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert report.layout == "flat" and report.n_images == 7 and report.skipped == ()
    assert report.counts == {"train": {"no_sub": 2, "cdm": 3, "axion": 2}}
    _check_dataset(tmp_path / "out.h5", written, lambda r: "train", _class_of)


def test_split_folders_with_aliases_and_case(tmp_path):
    folders = {"train/NO": 2, "train/CDM": 2, "train/Axion": 2, "validation/none": 1,
               "validation/subhalo": 1, "test/vortex": 2}
    written = _make_tree(tmp_path / "in", folders)
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert report.layout == "splits"
    assert report.counts["val"] == {"no_sub": 1, "cdm": 1, "axion": 0}
    assert report.counts["test"] == {"no_sub": 0, "cdm": 0, "axion": 2}
    aliases = {"no": "no_sub", "none": "no_sub", "cdm": "cdm", "subhalo": "cdm",
               "axion": "axion", "vortex": "axion"}
    splits = {"train": "train", "validation": "val", "test": "test"}
    _check_dataset(
        tmp_path / "out.h5", written,
        lambda r: splits[r.split("/")[0]], lambda r: aliases[r.split("/")[1].lower()],
    )


def test_model_folders_with_axion_pairs(tmp_path):
    folders = {f"Model_II{suffix}/{c}": 2 for suffix in ("", "_test") for c in CLASS_NAMES}
    written = _make_tree(tmp_path / "in", folders, axion_pairs=True)
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert report.layout == "model"
    ds = _check_dataset(
        tmp_path / "out.h5", written,
        lambda r: "test" if r.startswith("Model_II_test/") else "train", _class_of,
    )
    masses = ds.truth("axion_mass_ev")
    axion = ds.labels == CLASS_NAMES.index("axion")
    assert np.all(np.isfinite(masses[axion])) and np.all(np.isnan(masses[~axion]))
    assert ds.manifest["source"] == "deeplense-import" and ds.manifest["layout"] == "model"


def test_gsoc_layout_channel_first_with_aliases(tmp_path):
    folders = {f"{split}/{c}": 2 for split in ("train", "val") for c in ("no", "sphere", "vort")}
    written = _make_tree(tmp_path / "dataset", folders, shape=(1, SIDE, SIDE))
    report = import_deeplense(tmp_path / "dataset", tmp_path / "out.h5")
    assert report.image_shape == (1, SIDE, SIDE)
    _check_dataset(
        tmp_path / "out.h5", written,
        lambda r: r.split("/")[0], lambda r: CANONICAL[r.split("/")[1]],
    )


def test_channels_last_arrays_move_to_front(tmp_path):
    written = _make_tree(tmp_path / "in", {"cdm": 2, "no_sub": 1}, shape=(SIDE, SIDE, 3))
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert report.image_shape == (3, SIDE, SIDE)
    _check_dataset(tmp_path / "out.h5", written, lambda r: "train", _class_of)


def test_integer_images_become_float32_unchanged(tmp_path):
    written = _make_tree(tmp_path / "in", {"axion": 2, "cdm": 2}, shape=(10, 10), dtype=np.int64)
    import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    ds = _check_dataset(tmp_path / "out.h5", written, lambda r: "train", _class_of)
    assert ds.images().dtype == np.float32


def test_output_is_deterministic_and_blocked_writes_are_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(deeplense, "WRITE_BLOCK", 3)
    written = _make_tree(tmp_path / "in", {"train/no": 4, "train/vort": 3, "test/sphere": 4})
    import_deeplense(tmp_path / "in", tmp_path / "a.h5")
    calls = []
    import_deeplense(tmp_path / "in", tmp_path / "b.h5", progress=lambda *c: calls.append(c))
    stages = {stage: total for stage, _, total in calls}
    assert stages == {"checking files": 11, "writing dataset": 11}
    assert sum(n for stage, n, _ in calls if stage == "writing dataset") == 11
    a, b = LensDataset(tmp_path / "a.h5"), LensDataset(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.images(), b.images())
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.manifest["source_files"] == b.manifest["source_files"]
    np.testing.assert_array_equal(a.truth("source_index"), np.arange(len(written)))
    _check_dataset(tmp_path / "a.h5", written, lambda r: r.split("/")[0],
                   lambda r: CANONICAL[r.split("/")[1]])


# -- the channel rule ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, expected",
    [((8, 8), (1, 8, 8)), ((1, 8, 8), (1, 8, 8)), ((3, 8, 12), (3, 8, 12)),
     ((8, 12, 3), (3, 8, 12)), ((12, 8, 1), (1, 12, 8)), ((4, 9, 9), (4, 9, 9))],
)
def test_to_chw_shapes(shape, expected):
    array = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    image = to_chw(array, "x.npy")
    assert image.shape == expected and image.dtype == np.float32
    reference = array[None] if array.ndim == 2 else array
    if shape[-1] < shape[0]:
        reference = np.transpose(array, (2, 0, 1))
    np.testing.assert_array_equal(image, reference)


@pytest.mark.parametrize(
    "shape", [(64,), (3, 3, 3), (8, 2, 8), (2, 8, 3), (1, 1, 8, 8), (4, 64), (5, 5, 5)]
)
def test_to_chw_rejects_unclear_shapes(shape):
    with pytest.raises(BadInputFile, match=r"x\.npy: cannot use an array of shape"):
        to_chw(np.zeros(shape), "x.npy")


# -- bad input -------------------------------------------------------------------------------------
def _bad_corrupt(path):
    path.write_bytes(b"definitely not numpy")
    return "not a .npy file"


def _bad_truncated(path):
    np.save(path, np.ones((SIDE, SIDE)))
    path.write_bytes(path.read_bytes()[:-40])
    return "truncated"


def _bad_nan(path):
    image = np.ones((SIDE, SIDE))
    image[2, 3] = np.nan
    np.save(path, image)
    return "NaN or infinite"


def _bad_overflow(path):
    np.save(path, np.full((SIDE, SIDE), 1e300))
    return "NaN or infinite"


def _bad_wrong_rank(path):
    np.save(path, np.ones(SIDE * SIDE))
    return "cannot use an array of shape"


def _bad_empty(path):
    np.save(path, np.ones((0, SIDE)))
    return "empty array"


def _bad_other_shape(path):
    np.save(path, np.ones((SIDE + 2, SIDE + 2)))
    return r"image shape \(1, 10, 10\) .* differs from \(1, 8, 8\)"


def _bad_triple(path):
    triple = np.empty(3, dtype=object)
    triple[0], triple[1], triple[2] = np.ones((SIDE, SIDE)), 1e-23, 2.0
    np.save(path, triple, allow_pickle=True)
    return "object array of shape"


def _bad_text_mass(path):
    np.save(path, _pair(np.ones((SIDE, SIDE)), "1e-23"), allow_pickle=True)
    return "second element is a str"


def _bad_malicious(path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {path.parent / 'pwned'}",))

    header = {"descr": "|O", "fortran_order": False, "shape": (2,)}
    with path.open("wb") as fp:
        np.lib.format.write_array_header_1_0(fp, header)
        pickle.dump(Evil(), fp, protocol=3)
    return "refusing to unpickle"


def _bad_not_npy(path):
    path = path.with_suffix(".png")
    path.write_bytes(b"\x89PNG")
    return "not a .npy file"


BAD_FILES = [_bad_corrupt, _bad_truncated, _bad_nan, _bad_overflow, _bad_wrong_rank, _bad_empty,
             _bad_other_shape, _bad_triple, _bad_text_mass, _bad_malicious, _bad_not_npy]


@pytest.mark.parametrize("make_bad", BAD_FILES, ids=lambda f: f.__name__[5:])
def test_bad_file_is_an_error_naming_it(tmp_path, make_bad):
    written = _make_tree(tmp_path / "in", {"train/cdm": 2, "train/axion": 2}, axion_pairs=True)
    bad = tmp_path / "in" / "train" / "cdm" / "zz_bad.npy"
    reason = make_bad(bad)
    bad_name = "zz_bad.png" if make_bad is _bad_not_npy else "zz_bad.npy"
    with pytest.raises(BadInputFile, match=reason) as info:
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert bad_name in str(info.value)
    assert not (tmp_path / "out.h5").exists()
    assert not (tmp_path / "in" / "train" / "cdm" / "pwned").exists()

    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5", skip_bad=True)
    assert [s.path for s in report.skipped] == [f"train/cdm/{bad_name}"]
    assert len(report.skipped[0].reason) > 10
    ds = _check_dataset(tmp_path / "out.h5", written, lambda r: "train", _class_of)
    assert ds.manifest["skipped"] == [{"file": f"train/cdm/{bad_name}",
                                       "reason": report.skipped[0].reason}]
    assert not (tmp_path / "in" / "train" / "cdm" / "pwned").exists()


def test_skip_bad_keeps_the_most_common_shape(tmp_path):
    _make_tree(tmp_path / "in", {"cdm": 1}, shape=(12, 12))
    written = _make_tree(tmp_path / "in", {"no_sub": 3}, seed=1)
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5", skip_bad=True)
    assert report.image_shape == (1, SIDE, SIDE)
    assert [s.path for s in report.skipped] == ["cdm/img_000.npy"]
    _check_dataset(tmp_path / "out.h5", written, lambda r: "train", _class_of)


def test_nothing_valid_is_an_error_even_when_skipping(tmp_path):
    (tmp_path / "in" / "cdm").mkdir(parents=True)
    _bad_nan(tmp_path / "in" / "cdm" / "a.npy")
    with pytest.raises(ValueError, match="no valid images"):
        import_deeplense(tmp_path / "in", tmp_path / "out.h5", skip_bad=True)
    assert not (tmp_path / "out.h5").exists()


def test_unknown_class_folder_names_it_and_the_aliases(tmp_path):
    _make_tree(tmp_path / "in", {"train/cdm": 1, "train/lenses": 1})
    with pytest.raises(LayoutError, match="unknown class folder") as info:
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    message = str(info.value)
    assert "lenses" in message and all(a in message for a in ("no_sub", "sphere", "vortex"))


@pytest.mark.parametrize(
    "folders, match",
    [
        ({"train/cdm": 1, "cdm": 1}, "mixes class and split"),
        ({"Model_I/cdm": 1, "Model_II/cdm": 1}, "several models"),
        ({"foo/cdm": 1}, "unknown folder"),
        ({"train/no": 1, "train/no_sub": 1}, "are both class no_sub"),
        ({"val/cdm": 1, "validation/cdm": 1}, "same split"),
    ],
)
def test_ambiguous_layouts_are_rejected(tmp_path, folders, match):
    _make_tree(tmp_path / "in", folders)
    with pytest.raises(LayoutError, match=match):
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")


def test_loose_images_and_missing_root_are_errors(tmp_path):
    _make_tree(tmp_path / "in", {"train/cdm": 1})
    np.save(tmp_path / "in" / "train" / "stray.npy", np.ones((SIDE, SIDE)))
    with pytest.raises(LayoutError, match="stray.npy lies outside a class folder"):
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    (tmp_path / "in" / "train" / "stray.npy").unlink()
    np.save(tmp_path / "in" / "root_stray.npy", np.ones((SIDE, SIDE)))
    with pytest.raises(LayoutError, match="root_stray.npy lies outside a class folder"):
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        import_deeplense(tmp_path / "nowhere", tmp_path / "out.h5")


def test_existing_output_needs_overwrite(tmp_path):
    _make_tree(tmp_path / "in", {"cdm": 1})
    (tmp_path / "out.h5").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite"):
        import_deeplense(tmp_path / "in", tmp_path / "out.h5")
    assert (tmp_path / "out.h5").read_text() == "keep me"
    report = import_deeplense(tmp_path / "in", tmp_path / "out.h5", overwrite=True)
    assert report.n_images == len(LensDataset(tmp_path / "out.h5")) == 1


def test_read_deeplense_file_returns_pair_mass(tmp_path):
    np.save(tmp_path / "a.npy", _pair(np.full((SIDE, SIDE), 2, dtype=np.int16), 3e-23),
            allow_pickle=True)
    image, mass = read_deeplense_file(tmp_path / "a.npy")
    assert image.shape == (1, SIDE, SIDE) and image.dtype == np.float32 and np.all(image == 2)
    assert mass == 3e-23


# -- export ----------------------------------------------------------------------------------------
def _write_dataset(path: Path, channels: int = 1, n: int = 13, seed: int = 3):
    """A dataset with interleaved splits/labels and axion masses on some axion images."""
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, channels, SIDE, SIDE)).astype(np.float32)
    labels = rng.integers(0, 3, size=n)
    splits = rng.integers(0, 3, size=n).astype(np.uint8)
    masses = np.where(labels == 2, 10 ** rng.uniform(-24, -22, size=n), np.nan)
    masses[np.flatnonzero(labels == 2)[:1]] = np.nan  # an axion image without a known mass
    with DatasetWriter(path, n, images.shape[1:], CLASS_NAMES,
                       truth_columns={"axion_mass_ev": ((), "float64")}) as writer:
        writer.write(0, images, labels, splits, {"axion_mass_ev": masses})
    return images, labels, splits, masses


@pytest.mark.parametrize("channels", [1, 3])
def test_export_import_round_trip(tmp_path, monkeypatch, channels):
    monkeypatch.setattr(deeplense, "WRITE_BLOCK", 4)
    images, labels, splits, masses = _write_dataset(tmp_path / "orig.h5", channels)
    count = export_deeplense(tmp_path / "orig.h5", tmp_path / "tree")
    assert count == len(images)
    import_deeplense(tmp_path / "tree", tmp_path / "back.h5")
    back = LensDataset(tmp_path / "back.h5")
    assert len(back) == len(images)
    sources = back.manifest["source_files"]
    back_images, back_masses = back.images(), back.truth("axion_mass_ev")
    for row, source_idx in enumerate(back.truth("source_index")):
        original = int(Path(sources[source_idx]).stem)
        np.testing.assert_array_equal(back_images[row], images[original])
        assert back.labels[row] == labels[original]
        assert back.split_codes[row] == splits[original]
        np.testing.assert_array_equal(back_masses[row], masses[original])


def test_exported_files_follow_the_community_format(tmp_path):
    images, labels, splits, masses = _write_dataset(tmp_path / "orig.h5")
    export_deeplense(tmp_path / "orig.h5", tmp_path / "tree")
    split_names = ("train", "val", "test")
    for i in range(len(images)):
        path = tmp_path / "tree" / split_names[splits[i]] / CLASS_NAMES[labels[i]] / f"{i:02d}.npy"
        loaded = np.load(path, allow_pickle=True)
        if np.isfinite(masses[i]):
            assert loaded.dtype == object and loaded.shape == (2,)
            np.testing.assert_array_equal(loaded[0], images[i, 0])
            assert loaded[1] == masses[i]
        else:
            assert loaded.dtype == np.float32
            np.testing.assert_array_equal(loaded, images[i, 0])


def test_export_one_split_and_overwrite_rules(tmp_path):
    _, _, splits, _ = _write_dataset(tmp_path / "orig.h5")
    tree = tmp_path / "tree"
    export_deeplense(tmp_path / "orig.h5", tree)
    with pytest.raises(FileExistsError, match="not empty"):
        export_deeplense(tmp_path / "orig.h5", tree, split="train")
    written = export_deeplense(tmp_path / "orig.h5", tree, split="train", overwrite=True)
    assert written == int(np.sum(splits == 0))
    files = sorted(p.relative_to(tree).parts[0] for p in tree.rglob("*.npy"))
    assert files == ["train"] * written
    assert sorted(p.name for p in tree.iterdir()) == [".darklens-export.json", "train"]
    assert len(json.loads((tree / ".darklens-export.json").read_text())["files"]) == written


def test_export_never_overwrites_foreign_folders(tmp_path):
    _write_dataset(tmp_path / "orig.h5")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        export_deeplense(tmp_path / "orig.h5", foreign, overwrite=True)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_export_rejects_unknown_classes_and_splits(tmp_path):
    with DatasetWriter(tmp_path / "lens.h5", 2, (1, SIDE, SIDE), ["lens", "nonlens"]) as writer:
        writer.write(0, np.zeros((2, 1, SIDE, SIDE)), np.array([0, 1]), np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="lens, nonlens"):
        export_deeplense(tmp_path / "lens.h5", tmp_path / "tree")
    _write_dataset(tmp_path / "orig.h5")
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        export_deeplense(tmp_path / "orig.h5", tmp_path / "tree", split="holdout")
    assert not (tmp_path / "tree").exists()


# -- CLI -------------------------------------------------------------------------------------------
def _unwrapped(output: str) -> str:
    """CLI output without whitespace: rich folds long paths across lines at the console width."""
    return "".join(output.split())


def test_cli_round_trip_and_errors(tmp_path):
    runner = CliRunner()
    _make_tree(tmp_path / "in", {"train/no": 2, "train/sphere": 1, "val/vort": 1})
    _bad_nan(tmp_path / "in" / "train" / "no" / "broken.npy")

    result = runner.invoke(app, ["import", str(tmp_path / "in"), "--out", str(tmp_path / "a.h5")])
    assert result.exit_code == 2
    assert "broken.npy" in _unwrapped(result.output) and "Traceback" not in result.output

    result = runner.invoke(
        app, ["import", str(tmp_path / "in"), "--out", str(tmp_path / "a.h5"), "--skip-bad"]
    )
    assert result.exit_code == 0, result.output
    assert "train/no/broken.npy" in _unwrapped(result.output) and "NaN" in result.output
    assert LensDataset(tmp_path / "a.h5").counts()["train"] == {"no_sub": 2, "cdm": 1, "axion": 0}

    args = ["export", str(tmp_path / "a.h5"), "--layout", "deeplense", "--out", str(tmp_path / "t")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "t").rglob("*.npy"))) == 4

    result = runner.invoke(app, ["import", str(tmp_path / "t"), "--out", str(tmp_path / "b.h5")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        LensDataset(tmp_path / "a.h5").images(), LensDataset(tmp_path / "b.h5").images()
    )

    result = runner.invoke(app, [*args[:3], "tiles", "--out", str(tmp_path / "u")])
    assert result.exit_code == 2
    assert "unknownlayout'tiles'" in _unwrapped(result.output)
    assert "Traceback" not in result.output

    (tmp_path / "in" / "train" / "stars").mkdir()
    result = runner.invoke(
        app, ["import", str(tmp_path / "in"), "--out", str(tmp_path / "c.h5"), "--skip-bad"]
    )
    assert result.exit_code == 2
    assert "unknownclassfolder" in _unwrapped(result.output) and "stars" in result.output
    assert "Traceback" not in result.output
