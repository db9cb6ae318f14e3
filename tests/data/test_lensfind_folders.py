"""DeepLense lens-finding folders: import, seeded stratified split, bad and malicious files, CLI."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data import lensfind_folders
from darklens.data.deeplense import BadInputFile, LayoutError
from darklens.data.h5 import DatasetWriter, LensDataset
from darklens.data.lensfind_folders import (
    CLASS_NAMES,
    import_lensfind_folders,
    stratified_split,
)

SHAPE = (3, 8, 8)
COUNTS = {"train_lenses": 10, "train_nonlenses": 30, "test_lenses": 3, "test_nonlenses": 7}
runner = CliRunner()


def _make_folders(
    root: Path, counts: dict[str, int] = COUNTS, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random (3, 8, 8) float32 images; returns {relative path: image}."""
    rng = np.random.default_rng(seed)
    written = {}
    for folder, count in counts.items():
        (root / folder).mkdir(parents=True)
        for k in range(count):
            image = rng.normal(size=SHAPE).astype(np.float32)
            relative = f"{folder}/img_{k:03d}.npy"
            np.save(root / relative, image)
            written[relative] = image
    return written


class _OpensFile:
    """Pickles to ``open(target, "w")``: unpickling it creates ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _malicious_npy(path: Path, target: Path) -> Path:
    header = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(pickle.dumps([_OpensFile(target)], protocol=3))
    return path


def test_import_reads_every_image_with_its_label_and_split(tmp_path: Path):
    written = _make_folders(tmp_path / "lf")
    report = import_lensfind_folders(tmp_path / "lf", tmp_path / "lf.h5")
    assert report.n_images == sum(COUNTS.values()) and report.skipped == ()
    assert report.image_shape == SHAPE
    assert report.counts == {
        "train": {"non_lens": 27, "lens": 9},
        "val": {"non_lens": 3, "lens": 1},
        "test": {"non_lens": 7, "lens": 3},
    }
    with LensDataset(tmp_path / "lf.h5") as ds:
        assert ds.class_names == list(CLASS_NAMES) == ["non_lens", "lens"]
        sources = ds.manifest["source_files"]
        assert sorted(sources) == sorted(written)
        order = ds.truth("source_index")
        images = ds.images()
        for row, index in enumerate(order):
            relative = sources[index]
            np.testing.assert_array_equal(images[row], written[relative])
            assert ds.labels[row] == int(relative.split("/")[0].endswith("_lenses"))
            split = ds.split_names[ds.split_codes[row]]
            assert (split == "test") == relative.startswith("test_")


def test_val_split_is_stratified_seeded_and_from_training_folders_only(tmp_path: Path):
    _make_folders(tmp_path / "lf")
    splits = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        import_lensfind_folders(
            tmp_path / "lf", tmp_path / f"{name}.h5", val_fraction=0.2, seed=seed
        )
        with LensDataset(tmp_path / f"{name}.h5") as ds:
            splits[name] = ds.split_codes.copy()
            val = ds.split_indices("val")
            assert np.bincount(ds.labels[val], minlength=2).tolist() == [6, 2]
    np.testing.assert_array_equal(splits["a"], splits["b"])
    assert not np.array_equal(splits["a"], splits["c"])


def test_stratified_split_counts_per_class():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 3)
    codes = stratified_split(labels, (0.6, 0.3, 0.1), seed=0)
    for label, expected in ((0, (30, 15, 5)), (1, (6, 3, 1)), (2, (2, 1, 0))):
        counts = np.bincount(codes[labels == label], minlength=3)
        assert tuple(counts.tolist()) == expected, label
    np.testing.assert_array_equal(codes, stratified_split(labels, (0.6, 0.3, 0.1), seed=0))
    with pytest.raises(ValueError, match="must sum to 1"):
        stratified_split(labels, (0.6, 0.3, 0.3), seed=0)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path):
    _make_folders(tmp_path / "lf")
    target = tmp_path / "pwned"
    evil = _malicious_npy(tmp_path / "lf" / "train_lenses" / "evil.npy", target)
    with pytest.raises(BadInputFile, match=r"evil\.npy.*refusing to unpickle io\.open"):
        import_lensfind_folders(tmp_path / "lf", tmp_path / "out.h5")
    assert not target.exists()
    assert not (tmp_path / "out.h5").exists()

    report = import_lensfind_folders(
        tmp_path / "lf", tmp_path / "out.h5", skip_bad=True
    )
    assert not target.exists()
    assert [s.path for s in report.skipped] == [evil.relative_to(tmp_path / "lf").as_posix()]
    assert "refusing to unpickle" in report.skipped[0].reason
    assert report.n_images == sum(COUNTS.values())
    with LensDataset(tmp_path / "out.h5") as ds:
        assert ds.manifest["skipped"][0]["file"] == "train_lenses/evil.npy"


def test_object_arrays_and_bad_shapes_are_named(tmp_path: Path):
    _make_folders(tmp_path / "lf")
    pair = np.empty(2, dtype=object)
    pair[0], pair[1] = np.zeros((8, 8)), 1e-23
    np.save(tmp_path / "lf" / "train_nonlenses" / "pair.npy", pair, allow_pickle=True)
    with pytest.raises(BadInputFile, match=r"pair\.npy: holds a pickled object array"):
        import_lensfind_folders(tmp_path / "lf", tmp_path / "out.h5")
    (tmp_path / "lf" / "train_nonlenses" / "pair.npy").unlink()

    np.save(tmp_path / "lf" / "test_lenses" / "wide.npy", np.zeros((3, 8, 9), np.float32))
    with pytest.raises(BadInputFile, match=r"wide\.npy: image shape \(3, 8, 9\).*differs"):
        import_lensfind_folders(tmp_path / "lf", tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists() and not list(tmp_path.glob("*.partial"))
    report = import_lensfind_folders(
        tmp_path / "lf", tmp_path / "out.h5", skip_bad=True
    )
    assert [s.path for s in report.skipped] == ["test_lenses/wide.npy"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda root: (root / "extra").mkdir(), "unexpected folder .*extra"),
        (lambda root: (root / "notes.txt").write_text("x"), "unexpected file .*notes.txt"),
        (lambda root: (root / "train_lenses").rename(root / "lenses"), "unexpected folder"),
    ],
    ids=["unknown-folder", "loose-file", "renamed"],
)
def test_layout_errors_name_the_problem(tmp_path: Path, change, message: str):
    _make_folders(tmp_path / "lf")
    change(tmp_path / "lf")
    with pytest.raises(LayoutError, match=message):
        import_lensfind_folders(tmp_path / "lf", tmp_path / "out.h5")


def test_missing_training_folder_and_optional_test_folders(tmp_path: Path):
    _make_folders(tmp_path / "a", {"train_lenses": 4})
    with pytest.raises(LayoutError, match="lacks the folder.*train_nonlenses"):
        import_lensfind_folders(tmp_path / "a", tmp_path / "a.h5")
    _make_folders(tmp_path / "b", {"Train_Lenses": 4, "TRAIN_NONLENSES": 6})
    report = import_lensfind_folders(
        tmp_path / "b", tmp_path / "b.h5", val_fraction=0.5
    )
    assert set(report.counts) == {"train", "val"}
    assert report.counts["val"] == {"non_lens": 3, "lens": 2}


def test_writes_in_bounded_blocks(tmp_path: Path, monkeypatch):
    _make_folders(tmp_path / "lf")
    monkeypatch.setattr(lensfind_folders, "WRITE_BLOCK", 7)
    sizes = []
    original = DatasetWriter.write

    def spy(self, start, images, *args, **kwargs):
        sizes.append(len(images))
        return original(self, start, images, *args, **kwargs)

    monkeypatch.setattr(DatasetWriter, "write", spy)
    import_lensfind_folders(tmp_path / "lf", tmp_path / "out.h5")
    assert max(sizes) == 7 and sum(sizes) == sum(COUNTS.values())


def test_cli_imports_and_reports_errors_in_one_line(tmp_path: Path):
    _make_folders(tmp_path / "lf")
    out = tmp_path / "cli.h5"
    result = runner.invoke(
        app,
        [
            "import-lensfind",
            str(tmp_path / "lf"),
            "--layout",
            "deeplense",
            "--out",
            str(out),
            "--val-fraction",
            "0.2",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "non_lens" in result.output and "50 images of shape 3x8x8" in result.output
    with LensDataset(out) as ds:
        assert len(ds.split_indices("val")) == 8

    again = runner.invoke(
        app, ["import-lensfind", str(tmp_path / "lf"), "--layout", "deeplense", "-o", str(out)]
    )
    assert again.exit_code == 2 and "exists" in again.output and "Traceback" not in again.output
    foreign = runner.invoke(
        app,
        [
            "import-lensfind",
            str(tmp_path / "lf"),
            "--layout",
            "deeplense",
            "-o",
            str(tmp_path / "x.h5"),
            "--mask-fill",
            "median",
        ],
    )
    assert foreign.exit_code == 2 and "--mask-fill" in foreign.output
    unknown = runner.invoke(
        app, ["import-lensfind", str(tmp_path / "lf"), "--layout", "kaggle", "-o", str(out)]
    )
    assert unknown.exit_code == 2 and "unknown layout 'kaggle'" in unknown.output
