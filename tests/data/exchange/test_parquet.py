"""Parquet / Hugging Face exports: byte-exact round trips, shards, loading with `datasets`, the
dataset card's column types, and clear errors for Parquet files darklens did not write."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from darklens.data.exchange import ExchangeError, export_parquet, import_exchange
from darklens.data.exchange.common import MARKER
from darklens.data.h5 import LensDataset
from darklens.data.memory import InMemoryDataset
from tests.helpers import sha256


@pytest.mark.parametrize("preset", ["model_ii", "lensfind_ground", "transients_des_deep"])
def test_export_then_import_gives_back_the_same_file_bytes(datasets, preset, tmp_path):
    original = datasets[preset]
    assert export_parquet(original, tmp_path / "pq", shard_bytes=4096) == len(LensDataset(original))
    shards = sorted(p.name for p in (tmp_path / "pq" / "data").iterdir())
    assert len(shards) > 3 and shards[0].startswith("test-00000-of-")  # several per split
    done = import_exchange(tmp_path / "pq", tmp_path / "back.h5")
    assert done.layout == "parquet" and done.n_images == len(LensDataset(original))
    assert sha256(tmp_path / "back.h5") == sha256(original)


def test_an_in_memory_dataset_exports_like_its_file(datasets, tmp_path):
    memory = InMemoryDataset.load(datasets["lensfind_ground"])
    export_parquet(memory, tmp_path / "pq")
    import_exchange(tmp_path / "pq", tmp_path / "back.h5")
    assert sha256(tmp_path / "back.h5") == sha256(datasets["lensfind_ground"])


def test_one_split_exports_and_imports_alone(datasets, tmp_path):
    original = LensDataset(datasets["transients_des_deep"])
    export_parquet(original, tmp_path / "pq", split="test")
    import_exchange(tmp_path / "pq" / "data", tmp_path / "test.h5")
    rows = original.split_indices("test")
    with LensDataset(tmp_path / "test.h5") as back:
        assert len(back) == rows.size and back.split_indices("test").size == rows.size
        np.testing.assert_array_equal(back.images(), original.images(rows))
        np.testing.assert_array_equal(
            back.inputs("light_curves"), original.inputs("light_curves", rows)
        )
        assert back.manifest == original.manifest


def test_hugging_face_datasets_loads_the_export_with_the_cards_types(datasets, tmp_path):
    hf = pytest.importorskip("datasets")
    original = LensDataset(datasets["lensfind_ground"])
    export_parquet(original, tmp_path / "hf")
    files = {"train": str(tmp_path / "hf/data/train-*.parquet"),
             "validation": str(tmp_path / "hf/data/val-*.parquet")}  # fmt: skip
    loaded = hf.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    train = loaded["train"].with_format("numpy")
    rows = original.split_indices("train")
    assert train.num_rows == rows.size
    np.testing.assert_array_equal(train["index"], rows)
    np.testing.assert_array_equal(np.stack(train["image"]), original.images(rows))
    np.testing.assert_array_equal(train["label"], original.labels[rows])
    np.testing.assert_array_equal(
        train["truth_theta_e_arcsec"], original.truth("theta_e_arcsec")[rows]
    )
    # the card's YAML header: licence, splits, and column types that match what was loaded
    text = (tmp_path / "hf" / "README.md").read_text()
    header = yaml.safe_load(text.split("---")[1])
    assert header["license"] == "cc-by-4.0" and header["task_categories"] == [
        "image-classification"
    ]
    splits = [f["split"] for f in header["configs"][0]["data_files"]]
    assert splits == ["train", "validation", "test"]
    features = hf.Features._from_yaml_list(header["dataset_info"]["features"])
    assert features["label"].names == ["non_lens", "lens"]
    for name, feature in features.items():
        if name != "label":
            assert feature == loaded["train"].features[name], name
    citation = text.split("## Citation")[1].split("## Manifest")[0]
    assert "Metcalf et al. 2019" in citation and "arXiv:1802.03609" in citation
    assert json.loads(text.split("```json\n")[1].split("\n```")[0]) == original.manifest


def test_a_parquet_file_without_the_darklens_schema_is_refused(tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"pixels": [1.0, 2.0], "class": ["a", "b"]}), foreign)
    with pytest.raises(ExchangeError, match="has no darklens schema.*its columns: pixels, class"):
        import_exchange(foreign, tmp_path / "x.h5")
    truncated = tmp_path / "cut" / "data.parquet"
    truncated.parent.mkdir()
    truncated.write_bytes(foreign.read_bytes()[:40])
    with pytest.raises(ExchangeError, match="not a readable Parquet file"):
        import_exchange(truncated.parent, tmp_path / "y.h5")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "y.h5").exists()


def test_damaged_rows_and_mixed_exports_are_refused(datasets, tmp_path):
    export_parquet(datasets["model_ii"], tmp_path / "a")
    export_parquet(datasets["lensfind_ground"], tmp_path / "b")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("a", "b"):
        first = sorted((tmp_path / name / "data").iterdir())[0]
        (mixed / f"{name}.parquet").write_bytes(first.read_bytes())
    with pytest.raises(ExchangeError, match="belongs to another export"):
        import_exchange(mixed, tmp_path / "m.h5")
    shard = sorted((tmp_path / "a" / "data").iterdir())[0]
    table = pq.read_table(shard)
    bad = table.set_column(
        table.column_names.index("split"), "split", pa.array(["holdout"] * table.num_rows)
    )
    pq.write_table(bad, shard)
    with pytest.raises(ExchangeError, match=r"unknown split name\(s\) \['holdout'\]"):
        import_exchange(tmp_path / "a", tmp_path / "s.h5")
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.partial").exists()


def test_overwrite_replaces_only_an_earlier_export(datasets, tmp_path):
    out = tmp_path / "pq"
    export_parquet(datasets["model_ii"], out, shard_bytes=2048)
    many = set((out / "data").iterdir())
    with pytest.raises(FileExistsError, match="not empty"):
        export_parquet(datasets["model_ii"], out)
    (out / "notes.txt").write_text("mine")
    export_parquet(datasets["model_ii"], out, overwrite=True)
    assert len(list((out / "data").iterdir())) < len(many)  # stale shards are gone
    assert (out / "notes.txt").read_text() == "mine" and (out / MARKER).is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="has no darklens.json"):
        export_parquet(datasets["model_ii"], other, overwrite=True)
