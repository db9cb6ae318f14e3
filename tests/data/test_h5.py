"""The dataset file: atomic writes, lazy reads, and clear errors on bad files."""

import h5py
import numpy as np
import pytest

from darklens.data.h5 import DatasetFormatError, DatasetWriter, LensDataset


def _write(path, n=10, **kw):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    labels = np.arange(n) % 2
    with DatasetWriter(path, n, (1, 8, 8), ["a", "b"], manifest={"k": 1}, **kw) as w:
        w.write(0, images, labels, np.zeros(n, np.uint8))
    return images, labels


def test_round_trip_and_lazy_reads(tmp_path):
    images, labels = _write(tmp_path / "d.h5")
    ds = LensDataset(tmp_path / "d.h5")
    assert len(ds) == 10 and ds.class_names == ["a", "b"] and ds.manifest == {"k": 1}
    np.testing.assert_array_equal(ds.images(), images)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_array_equal(ds.images([5, 1, 5]), images[[5, 1, 5]])
    blocks = list(ds.iter_blocks(4))
    assert [s for s, _ in blocks] == [0, 4, 8]
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), images)
    assert ds.split_indices("train").tolist() == list(range(10))
    with pytest.raises(KeyError, match="unknown split"):
        ds.split_indices("holdout")


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "d.h5"
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(path, 4, (1, 8, 8), ["a"]) as w:
            w.write(0, np.zeros((2, 1, 8, 8)), np.zeros(2, int), np.zeros(2, np.uint8))
            raise RuntimeError("boom")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_incomplete_write_is_refused(tmp_path):
    w = DatasetWriter(tmp_path / "d.h5", 4, (1, 8, 8), ["a"])
    w.write(0, np.zeros((2, 1, 8, 8)), np.zeros(2, int), np.zeros(2, np.uint8))
    with pytest.raises(RuntimeError, match="never written"):
        w.close()
    assert not (tmp_path / "d.h5").exists()


def test_nan_and_bad_labels_rejected(tmp_path):
    with DatasetWriter(tmp_path / "d.h5", 2, (1, 8, 8), ["a"]) as w:
        bad = np.zeros((2, 1, 8, 8))
        bad[1, 0, 3, 3] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            w.write(0, bad, np.zeros(2, int), np.zeros(2, np.uint8))
        with pytest.raises(ValueError, match="labels"):
            w.write(0, np.zeros((2, 1, 8, 8)), np.array([0, 3]), np.zeros(2, np.uint8))
        w.write(0, np.zeros((2, 1, 8, 8)), np.zeros(2, int), np.zeros(2, np.uint8))


def test_existing_file_needs_overwrite(tmp_path):
    _write(tmp_path / "d.h5")
    with pytest.raises(FileExistsError, match="overwrite"):
        _write(tmp_path / "d.h5")
    _write(tmp_path / "d.h5", overwrite=True)


def test_foreign_truncated_and_missing_files(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DatasetFormatError, match="not a darklens dataset"):
        LensDataset(tmp_path / "other.h5")
    _write(tmp_path / "d.h5")
    data = (tmp_path / "d.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetFormatError, match="cut.h5"):
        LensDataset(tmp_path / "cut.h5")
    with pytest.raises(FileNotFoundError):
        LensDataset(tmp_path / "nope.h5")


def test_extra_inputs_round_trip_and_are_required(tmp_path):
    n = 6
    curves = np.random.default_rng(1).normal(size=(n, 5, 4)).astype(np.float32)
    path = tmp_path / "x.h5"
    with DatasetWriter(path, n, (1, 8, 8), ["a"], extra_inputs={"light_curves": (5, 4)}) as w:
        args = (np.zeros((3, 1, 8, 8)), np.zeros(3, int), np.zeros(3, np.uint8))
        with pytest.raises(KeyError, match="declared"):
            w.write(0, *args)  # the declared input is missing
        bad = curves[:3].copy()
        bad[0, 0, 0] = np.inf
        with pytest.raises(ValueError, match="light_curves"):
            w.write(0, *args, inputs={"light_curves": bad})
        w.write(0, *args, inputs={"light_curves": curves[:3]})
        w.write(3, *args, inputs={"light_curves": curves[3:]})
    ds = LensDataset(path)
    assert ds.input_names == ["light_curves"]
    np.testing.assert_array_equal(ds.inputs("light_curves"), curves)
    np.testing.assert_array_equal(ds.inputs("light_curves", [1, 4]), curves[[1, 4]])
    with pytest.raises(KeyError, match="no extra input"):
        ds.inputs("epochs")


def test_truth_write_order_does_not_change_the_file_bytes(tmp_path):
    """Truth columns are written in declaration order: the order of a block's dict is
    irrelevant, and a value never written reads as the fill value."""
    import hashlib

    columns = {"a": ((), "float64"), "b": ((2,), "int32")}
    values = {"a": np.array([1.5, 2.5]), "b": np.array([[1, 2], [3, 4]])}
    digests = []
    for order in (["a", "b"], ["b", "a"]):
        path = tmp_path / f"{order[0]}.h5"
        with DatasetWriter(path, 3, (1, 4, 4), ["x"], truth_columns=columns) as w:
            w.write(
                0,
                np.zeros((2, 1, 4, 4)),
                np.zeros(2, int),
                np.zeros(2, np.uint8),
                {name: values[name] for name in order},
            )
            w.write(2, np.zeros((1, 1, 4, 4)), np.zeros(1, int), np.zeros(1, np.uint8))
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    ds = LensDataset(tmp_path / "a.h5")
    assert ds.truth("a")[:2].tolist() == [1.5, 2.5] and np.isnan(ds.truth("a")[2])
    assert ds.truth("b")[2].tolist() == [0, 0]


def test_clean_images_are_written_checked_and_read(tmp_path):
    images = np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32)
    path = tmp_path / "clean.h5"
    with DatasetWriter(path, 4, (1, 8, 8), ["a", "b"], store_clean=True) as writer:
        with pytest.raises(ValueError, match="store_clean needs the noiseless images"):
            writer.write(0, images, np.zeros(4, int), np.zeros(4, np.uint8))
        writer.write(0, images, np.zeros(4, int), np.zeros(4, np.uint8), clean=images / 2)
    with LensDataset(path) as data:
        np.testing.assert_array_equal(data.clean_images([3, 1]), images[[3, 1]] / 2)
    with h5py.File(path, "a") as f:
        del f["targets/clean"]
        f["targets"].create_dataset("clean", data=np.zeros((4, 1, 4, 4), np.float32))
    with pytest.raises(DatasetFormatError, match="/targets/clean has shape"):
        LensDataset(path)
    plain = tmp_path / "plain.h5"
    with DatasetWriter(plain, 1, (1, 8, 8), ["a", "b"]) as writer:
        writer.write(0, images[:1], np.zeros(1, int), np.zeros(1, np.uint8))
    with LensDataset(plain) as data, pytest.raises(KeyError, match="store_clean=true"):
        data.clean_images()
