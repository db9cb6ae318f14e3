"""Dataset files that lie about themselves are refused on open (issue 12, items 4 and 6)."""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from darklens.data.h5 import (
    FORMAT,
    DatasetFormatError,
    LensDataset,
    check_dataset_file,
    empty_class_warnings,
)
from darklens.guards import SizeLimitError, set_max_bytes


def _craft(path, *, n_images=60, n_labels=None, n_split=None, labels=None, split=None,
           truth_as_dataset=False, images=None, n_classes=3):
    """A dataset file written with h5py directly, so every field can be wrong."""
    n_labels = n_images if n_labels is None else n_labels
    n_split = n_images if n_split is None else n_split
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((n_images, 1, 4, 4), np.float32) if images is None else images
        f["labels"] = np.arange(n_labels) % n_classes if labels is None else labels
        f["split"] = np.zeros(n_split, np.uint8) if split is None else split
        if truth_as_dataset:
            f["truth"] = np.zeros(n_images)
        else:
            f.create_group("truth")
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = 1
        f.attrs["class_names"] = json.dumps(["a", "b", "c"][:n_classes])
        f.attrs["split_names"] = json.dumps(["train", "val", "test"])
        f.attrs["manifest"] = json.dumps({})
    return path


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_labels": 50}, r"50 labels but 60 images"),
        ({"n_split": 59}, r"59 split codes but 60 images"),
        ({"split": np.full(60, 9, np.uint8)}, r"60 split codes outside 0\.\.2.*e\.g\. 9"),
        ({"labels": np.r_[np.zeros(59, int), 7]}, r"1 labels outside 0\.\.2 .*e\.g\. 7"),
        ({"labels": np.full(60, 0.5)}, r"labels are float64"),
        ({"truth_as_dataset": True}, r"/truth is a dataset; expected a group"),
    ],
    ids=["60-images-50-labels", "short-split", "split-code-9", "label-7-of-3", "float-labels",
         "truth-dataset"],
)
def test_inconsistent_dataset_is_refused_on_open(tmp_path, options, message):
    path = _craft(tmp_path / "bad.h5", **options)
    with pytest.raises(DatasetFormatError, match=message):
        LensDataset(path)
    assert any(re.search(message, p) for p in check_dataset_file(path).problems)


def test_check_reports_every_problem_at_once(tmp_path):
    labels = np.r_[np.zeros(59, int), 7]
    split = np.r_[np.zeros(59, np.uint8), 9]
    images = np.zeros((60, 1, 4, 4), np.float32)
    images[3, 0, 1, 1] = np.nan
    path = _craft(tmp_path / "bad.h5", labels=labels, split=split, images=images)
    problems = check_dataset_file(path).problems
    assert len(problems) == 2 and "labels outside" in problems[0] and "split codes" in problems[1]
    clean = _craft(tmp_path / "nan.h5", images=images)
    nan_problems = check_dataset_file(clean).problems
    assert nan_problems == ("1 rows of /images hold NaN or infinite values (first: index 3)",)


def test_declared_label_count_is_checked_against_the_limit_before_reading(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:  # a few KB on disk, 10^9 labels declared
        f.create_dataset("images", shape=(10**9, 1, 4, 4), dtype="f4", chunks=(1024, 1, 4, 4))
        f.create_dataset("labels", shape=(10**9,), dtype="i8", chunks=(4096,))
        f.create_dataset("split", shape=(10**9,), dtype="u1", chunks=(4096,))
        f.attrs.update(format=FORMAT, format_version=1, class_names='["a", "b"]',
                       split_names='["train", "val", "test"]', manifest="{}")
    assert path.stat().st_size < 100_000
    set_max_bytes("1G")
    try:
        with pytest.raises(SizeLimitError, match="over the 1.0 GiB limit"):
            LensDataset(path)
    finally:
        set_max_bytes(None)


def test_split_without_a_class_is_a_warning():
    labels = np.array([0, 1, 0, 0, 1, 0])
    codes = np.array([0, 0, 1, 1, 2, 2])
    lines = empty_class_warnings(labels, codes, ["non_lens", "lens"], ["train", "val", "test"])
    assert lines == [
        "split 'val' (2 images) has no example of class lens: its metrics (AUC) cannot be "
        "computed for that class"
    ]
