"""Sharded simulation on a local Ray cluster: the shard set reads as one dataset, byte-identical
to a single-machine run; a failed shard leaves no index and a rerun renders only what is missing."""

import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import DatasetFormatError, LensDataset
from darklens.data.shards import shard_path
from darklens.simulate.api import resolve_config, simulate
from darklens.simulate.shards import ShardError, shard_ranges, simulate_shards

CONFIG = resolve_config("model_ii", overrides={"instrument.num_pix": 16})
SIZE = dict(n_per_class=5, seed=2, batch_size=4)


def assert_same_dataset(a_path, b_path):
    with LensDataset(a_path) as a, LensDataset(b_path) as b:
        assert np.array_equal(a.images(), b.images())
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.split_codes, b.split_codes)
        assert a.truth_columns == b.truth_columns
        for column in b.truth_columns:
            np.testing.assert_array_equal(a.truth(column), b.truth(column), err_msg=column)


def test_shard_ranges_cover_every_image_once():
    assert shard_ranges(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_ranges(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError, match="shards must be in 1..4"):
        shard_ranges(4, 5)


def test_shard_set_equals_a_single_run(ray_cluster, tmp_path):
    result = simulate_shards(CONFIG, tmp_path / "set.h5", shards=3, **SIZE)
    single = simulate(CONFIG, tmp_path / "single.h5", **SIZE)
    assert result.n_images == 15
    assert_same_dataset(tmp_path / "set.h5", single.path)
    info = CliRunner().invoke(app, ["info", str(tmp_path / "set.h5")])
    assert info.exit_code == 0 and "15" in info.output
    shard_path(tmp_path / "set.h5", 1, 3).unlink()
    with pytest.raises(DatasetFormatError, match="shard .*shard-00001-of-00003.h5 is missing"):
        LensDataset(tmp_path / "set.h5")


def test_failed_shard_leaves_no_index_and_a_rerun_resumes(ray_cluster, tmp_path):
    out = tmp_path / "set.h5"
    blocker = shard_path(out, 1, 3)
    blocker.mkdir(parents=True)  # shard 1 cannot be published there
    with pytest.raises(ShardError, match="1 of 3 shard"):
        simulate_shards(CONFIG, out, shards=3, **SIZE)
    assert not out.exists()
    kept = {k: shard_path(out, k, 3).stat().st_mtime_ns for k in (0, 2)}
    blocker.rmdir()
    simulate_shards(CONFIG, out, shards=3, **SIZE)
    assert {k: shard_path(out, k, 3).stat().st_mtime_ns for k in (0, 2)} == kept
    assert_same_dataset(out, simulate(CONFIG, tmp_path / "single.h5", **SIZE).path)
    # other settings: every shard is made again
    simulate_shards(CONFIG, out, shards=3, overwrite=True, **{**SIZE, "seed": 3})
    assert shard_path(out, 0, 3).stat().st_mtime_ns != kept[0]
