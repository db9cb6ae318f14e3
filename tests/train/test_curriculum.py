"""Curriculum learning: easiest examples of each class first, by a truth column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from darklens.config import ConfigError
from darklens.data.h5 import LensDataset
from darklens.train import TrainConfig, train
from darklens.train import trainer as trainer_module
from darklens.train.data import curriculum_fraction, curriculum_order, curriculum_quantiles
from tests.helpers import simulate_tiny

FAST = {"model": "deeplense_cnn", "batch_size": 4, "seed": 0, "epochs": 3}


def test_quantiles_rank_within_each_class_and_keep_constant_classes():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    values = np.array([5.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0, np.nan, 2.0, 4.0])
    q = curriculum_quantiles(values, labels)
    np.testing.assert_allclose(q[:3], [0.0, 2 / 3, 1 / 3])  # larger is easier
    assert np.all(np.isnan(q[3:7]))  # a constant class (non-lenses' arc S/N of 0) always counts
    assert np.isnan(q[7]) and q[8] == 0.5 and q[9] == 0.0  # NaN values always count
    np.testing.assert_allclose(
        curriculum_quantiles(values, labels, "smaller")[:3], [2 / 3, 0, 1 / 3]
    )
    with pytest.raises(ValueError, match="one curriculum value per example"):
        curriculum_quantiles(values[:4], labels)


def test_the_share_rises_linearly_then_every_example_counts():
    assert [curriculum_fraction(e, 0.25, 3) for e in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert curriculum_fraction(0, 0.25, 0) == 1.0


def test_an_epoch_keeps_the_easy_share_at_its_usual_length():
    q = np.array([0.0, 0.5, np.nan, 0.25, 0.75])
    order = np.array([4, 3, 2, 1, 0])
    out = curriculum_order(order, q, 0.5)
    assert len(out) == len(order) and set(out) == {3, 2, 0}
    assert out[:3].tolist() == [3, 2, 0]  # the permutation's order, then repeated
    assert curriculum_order(order, q, 1.0) is order
    with pytest.raises(ValueError, match="keeps no training example"):
        curriculum_order(order, np.array([0.9] * 5), 0.1)


@pytest.fixture(scope="module")
def lensfind_h5(tmp_path_factory) -> Path:
    return simulate_tiny(tmp_path_factory.mktemp("cur"), "lensfind_ground", n=32,
                         lens_fraction=(0.5, 0.5, 0.5))  # fmt: skip


def test_training_starts_from_the_brightest_arcs(lensfind_h5: Path, tmp_path: Path, monkeypatch):
    seen: list[tuple[float, np.ndarray]] = []
    original = trainer_module.curriculum_order

    def spy(order, quantiles, fraction):
        out = original(order, quantiles, fraction)
        seen.append((fraction, np.unique(out)))
        return out

    monkeypatch.setattr(trainer_module, "curriculum_order", spy)
    config = TrainConfig(curriculum="arc_snr", curriculum_epochs=2, curriculum_start=0.5, **FAST)
    train(config, lensfind_h5, tmp_path / "run")
    assert [fraction for fraction, _ in seen] == [0.5, 0.75, 1.0]
    with LensDataset(lensfind_h5) as ds:
        rows = ds.split_indices("train")
        snr, labels = ds.truth("arc_snr")[rows], ds.labels[rows]
    lenses = np.flatnonzero(labels == 1)
    first = seen[0][1]
    assert set(np.flatnonzero(labels == 0)) <= set(first)  # every non-lens, every epoch
    kept = [i for i in lenses if i in set(first)]
    assert len(kept) == int(np.ceil(0.5 * len(lenses)))
    assert snr[kept].min() >= snr[[i for i in lenses if i not in set(first)]].max()
    assert len(seen[2][1]) == len(rows)


def test_bad_curriculum_settings_are_named(lensfind_h5: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="curriculum_epochs > 0"):
        TrainConfig(curriculum="arc_snr")
    with pytest.raises(ConfigError, match="curriculum_start"):
        TrainConfig(curriculum="arc_snr", curriculum_epochs=2, curriculum_start=0.0)
    config = TrainConfig(curriculum="-arc_brightness", curriculum_epochs=1, **FAST)
    with pytest.raises(ValueError, match="'arc_brightness' is not a truth column.*arc_snr"):
        train(config, lensfind_h5, tmp_path / "bad")
    config = TrainConfig(curriculum="arc_snr_bands", curriculum_epochs=1, **FAST)
    with pytest.raises(ValueError, match="one value per band"):
        train(config, lensfind_h5, tmp_path / "bands")
