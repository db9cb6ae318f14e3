"""In-memory datasets: checks on construction, selection, the writer twin and the reader view."""

from __future__ import annotations

import numpy as np
import pytest

from darklens.data.h5 import LensDataset
from darklens.data.memory import ArrayWriter, InMemoryDataset, MemoryReader, open_dataset


def _dataset(n: int = 6) -> InMemoryDataset:
    rng = np.random.default_rng(0)
    return InMemoryDataset(
        rng.normal(size=(n, 2, 8, 8)).astype(np.float32),
        np.arange(n) % 2,
        np.array([0, 0, 1, 2, 0, 1][:n], np.uint8),
        ["a", "b"],
        manifest={"seed": 3},
        truth={"theta_e_arcsec": np.linspace(0.5, 1.5, n)},
        inputs={"light_curves": rng.normal(size=(n, 5, 2)).astype(np.float32)},
    )


def test_selection_keeps_rows_together():
    ds = _dataset()
    train = ds.split("train")
    rows = ds.split_indices("train")
    assert rows.tolist() == [0, 1, 4] and len(train) == 3
    np.testing.assert_array_equal(train.images, ds.images[rows])
    np.testing.assert_array_equal(train.truth["theta_e_arcsec"], ds.truth["theta_e_arcsec"][rows])
    np.testing.assert_array_equal(train.inputs["light_curves"], ds.inputs["light_curves"][rows])
    assert ds.counts() == {
        "train": {"a": 2, "b": 1},
        "val": {"a": 1, "b": 1},
        "test": {"a": 0, "b": 1},
    }
    with pytest.raises(KeyError, match="unknown split 'holdout'"):
        ds.split("holdout")


def test_bad_arrays_are_refused_with_the_reason():
    good = _dataset()
    with pytest.raises(ValueError, match="float32"):
        InMemoryDataset(good.images.astype(np.float64), good.labels, good.split_codes, ["a", "b"])
    nan = good.images.copy()
    nan[2, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        InMemoryDataset(nan, good.labels, good.split_codes, ["a", "b"])
    with pytest.raises(ValueError, match="labels"):
        InMemoryDataset(good.images, good.labels + 1, good.split_codes, ["a", "b"])
    with pytest.raises(ValueError, match="split codes"):
        InMemoryDataset(good.images, good.labels, good.split_codes + 3, ["a", "b"])
    with pytest.raises(ValueError, match="truth column 'x'"):
        InMemoryDataset(good.images, good.labels, good.split_codes, ["a", "b"], truth={"x": [1]})


def test_array_writer_checks_like_the_file_writer_and_refuses_gaps():
    writer = ArrayWriter(4, (1, 4, 4), ["a"], truth_columns={"z": ((), "float64")})
    with pytest.raises(IndexError, match="outside"):
        writer.write(3, np.zeros((2, 1, 4, 4)), np.zeros(2, int), np.zeros(2, np.uint8))
    with pytest.raises(KeyError, match="not declared"):
        writer.write(0, np.zeros((1, 1, 4, 4)), np.zeros(1, int), np.zeros(1, np.uint8), {"q": [1]})
    writer.write(0, np.ones((2, 1, 4, 4)), np.zeros(2, int), np.zeros(2, np.uint8), {"z": [1, 2]})
    with pytest.raises(RuntimeError, match="2 of 4 images were never written"):
        writer.close()
    writer.write(2, np.ones((2, 1, 4, 4)), np.zeros(2, int), np.zeros(2, np.uint8))
    ds = writer.close()
    assert ds.truth["z"][:2].tolist() == [1.0, 2.0] and np.isnan(ds.truth["z"][2:]).all()


def test_reader_view_answers_like_a_dataset_file(tmp_path):
    ds = _dataset()
    path = ds.save(tmp_path / "d.h5")
    memory, on_disk = open_dataset(ds), open_dataset(path)
    assert isinstance(memory, MemoryReader) and isinstance(on_disk, LensDataset)
    rows = np.array([4, 0, 3])
    np.testing.assert_array_equal(memory.images(rows), on_disk.images(rows))
    np.testing.assert_array_equal(
        memory.inputs("light_curves", rows), on_disk.inputs("light_curves", rows)
    )
    np.testing.assert_array_equal(memory.truth("theta_e_arcsec"), on_disk.truth("theta_e_arcsec"))
    assert memory.input_shape("light_curves") == on_disk.input_shape("light_curves") == (5, 2)
    assert memory.counts() == on_disk.counts() and memory.manifest == on_disk.manifest
    with pytest.raises(KeyError, match="available: light_curves"):
        memory.inputs("epoch_images")
    with pytest.raises(TypeError, match="InMemoryDataset"):
        open_dataset(42)
    on_disk.close()
