"""DeepGraviLens import: release layout, checks, safe metadata, dihedral duplicates, CLI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.deepgravilens import (
    CLASS_NAMES,
    DeepGraviLensError,
    dihedral_key,
    dihedral_views,
    import_deepgravilens,
    load_metadata,
)
from darklens.data.h5 import LensDataset
from darklens.data.safe_pickle import UnsafePickleError
from darklens.simulate.transients import CLASS_NAMES as SIMULATED_CLASS_NAMES

runner = CliRunner()


class _RunsShell:
    """Pickles to os.system("touch target"): unpickling it would create ``target``."""

    def __init__(self, target: Path) -> None:
        self.command = f"touch {target}"

    def __reduce__(self):
        return (os.system, (self.command,))


def _metadata(n: int, group: int, rng) -> np.ndarray:
    records = np.empty(n, dtype=object)
    for i in range(n):
        records[i] = {
            "PLANE_1-OBJECT_1-REDSHIFT-g": float(rng.uniform(0.2, 0.8)),
            "NUMBER_OF_IMAGES": int(group),
            "CONFIGURATION": "CONFIGURATION_1",
            "band_zp": np.array([30.0, 30.1]),
        }
    return records


def write_release(
    root: Path, subset: str = "des_deep_data", n_epochs: int = 14, sizes=(3, 4, 3, 2), seed=0
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """GROUP_{1..4}_{ims,lcs,mds}_<T>.npy as the release stores them (flat rows)."""
    folder = root / "dataset" / subset
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = {}
    for group, n in enumerate(sizes, start=1):
        images = rng.random((n, 4, 45, 45)).astype(np.float32)
        curves = rng.random((n, n_epochs, 4)).astype(np.float32)
        np.save(folder / f"GROUP_{group}_ims_{n_epochs}.npy", images.reshape(n, -1))
        np.save(folder / f"GROUP_{group}_lcs_{n_epochs}.npy", curves.reshape(n, -1))
        np.save(folder / f"GROUP_{group}_mds_{n_epochs}.npy", _metadata(n, group, rng))
        data[group] = (images, curves)
    return data


def test_class_names_match_the_simulator():
    assert CLASS_NAMES == SIMULATED_CLASS_NAMES


def test_import_reshapes_images_and_light_curves_and_keeps_numeric_metadata(tmp_path):
    data = write_release(tmp_path)
    report = import_deepgravilens(tmp_path, tmp_path / "dgl.h5", seed=1)
    ds = LensDataset(report.output)
    assert ds.class_names == list(CLASS_NAMES) and ds.image_shape == (4, 45, 45)
    assert np.bincount(ds.labels).tolist() == [3, 4, 3, 2]
    images = np.concatenate([data[g][0] for g in (1, 2, 3, 4)])
    curves = np.concatenate([data[g][1] for g in (1, 2, 3, 4)])
    assert np.array_equal(ds.images(), images)
    assert np.array_equal(ds.inputs("light_curves"), curves)
    np.testing.assert_array_equal(
        ds.truth("md_number_of_images"), np.repeat([1, 2, 3, 4], [3, 4, 3, 2])
    )
    assert "md_plane_1_object_1_redshift_g" in ds.truth_columns
    assert set(report.ignored_metadata) == {"CONFIGURATION", "band_zp"}
    assert report.n_epochs == 14 and report.n_images == 12 and report.duplicate_groups == 0
    assert ds.manifest["subset"] == "des_deep_data"


def test_two_epoch_counts_and_a_folder_mixing_them(tmp_path):
    write_release(tmp_path, subset="full_data", n_epochs=7)
    report = import_deepgravilens(tmp_path, tmp_path / "wide.h5", subset="full_data")
    assert report.n_epochs == 7
    assert LensDataset(report.output).inputs("light_curves").shape == (12, 7, 4)
    write_release(tmp_path, subset="full_data", n_epochs=14)
    with pytest.raises(DeepGraviLensError, match="7, 14"):
        import_deepgravilens(tmp_path, tmp_path / "mixed.h5", subset="full_data")


def test_malicious_metadata_pickle_is_refused_without_running_it(tmp_path):
    write_release(tmp_path)
    target = tmp_path / "pwned"
    payload = np.empty(3, dtype=object)
    payload[:] = [{"a": 1.0}, _RunsShell(target), {"a": 2.0}]
    mds = tmp_path / "dataset" / "des_deep_data" / "GROUP_1_mds_14.npy"
    np.save(mds, payload, allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        import_deepgravilens(tmp_path, tmp_path / "x.h5")
    assert not target.exists()
    assert not (tmp_path / "x.h5").exists()


def test_metadata_loader_reads_plain_dicts(tmp_path):
    records = np.empty(2, dtype=object)
    records[:] = [{"z": 0.5, "name": "a", "arr": np.arange(3)}, {"z": 1.5, "name": "b"}]
    np.save(tmp_path / "m.npy", records, allow_pickle=True)
    loaded = load_metadata(tmp_path / "m.npy")
    assert [r["z"] for r in loaded] == [0.5, 1.5]
    assert np.array_equal(loaded[0]["arr"], np.arange(3))


def test_count_and_epoch_mismatches_name_the_file(tmp_path):
    write_release(tmp_path)
    folder = tmp_path / "dataset" / "des_deep_data"
    np.save(folder / "GROUP_2_lcs_14.npy", np.zeros((5, 14 * 4), dtype=np.float32))
    with pytest.raises(DeepGraviLensError, match=r"GROUP_2_lcs_14\.npy has 5 examples"):
        import_deepgravilens(tmp_path, tmp_path / "x.h5")
    np.save(folder / "GROUP_2_lcs_14.npy", np.zeros((4, 13 * 4), dtype=np.float32))
    with pytest.raises(DeepGraviLensError, match="T=14"):
        import_deepgravilens(tmp_path, tmp_path / "x.h5")
    (folder / "GROUP_3_mds_14.npy").unlink()
    with pytest.raises(DeepGraviLensError, match="GROUP_3_mds_14"):
        import_deepgravilens(tmp_path, tmp_path / "x.h5")


def test_dihedral_key_is_shared_by_all_eight_views_only():
    image = np.random.default_rng(0).random((4, 45, 45))
    keys = {dihedral_key(view) for view in dihedral_views(image)}
    assert len(keys) == 1
    assert dihedral_key(np.flip(image, axis=-2)) in keys  # a flip about the other axis too
    assert dihedral_key(np.swapaxes(image, -1, -2)) in keys  # transpose
    other = image.copy()
    other[0, 3, 4] += 0.01
    assert dihedral_key(other) not in keys


def _release_with_augmented_copies(root: Path) -> None:
    """Every base image appears with 3 rotated or mirrored copies in its group."""
    folder = root / "dataset" / "des_deep_data"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    for group in (1, 2, 3, 4):
        base = rng.random((5, 4, 45, 45)).astype(np.float32)
        copies = [np.rot90(base, 1, axes=(2, 3)), base[..., ::-1], np.rot90(base, 2, axes=(2, 3))]
        images = np.concatenate([base, *copies])
        n = len(images)
        np.save(folder / f"GROUP_{group}_ims_14.npy", images.reshape(n, -1))
        np.save(folder / f"GROUP_{group}_lcs_14.npy", rng.random((n, 14, 4)).astype(np.float32))
        np.save(folder / f"GROUP_{group}_mds_14.npy", _metadata(n, group, rng))


def _spanning_groups(ds: LensDataset) -> int:
    groups = ds.truth("duplicate_group")
    return sum(len(set(ds.split_codes[groups == g])) > 1 for g in np.unique(groups))


def test_duplicates_are_kept_in_one_split_or_counted(tmp_path):
    _release_with_augmented_copies(tmp_path)
    deduped = import_deepgravilens(tmp_path, tmp_path / "d.h5", seed=3)
    ds = LensDataset(deduped.output)
    assert deduped.duplicate_groups == 20 and deduped.duplicate_images == 80
    groups = ds.truth("duplicate_group")
    assert len(np.unique(groups)) == 20 and np.all(np.bincount(groups) == 4)
    assert _spanning_groups(ds) == 0 and deduped.cross_split_groups == 0
    for label in range(4):  # whole groups of 4: each split within one group of 14 / 3 / 3
        counts = np.bincount(ds.split_codes[ds.labels == label], minlength=3)
        assert np.all(np.abs(counts - [14, 3, 3]) < 4) and np.all(counts > 0)
    plain = import_deepgravilens(tmp_path, tmp_path / "p.h5", seed=3, dedupe=False)
    ds_plain = LensDataset(plain.output)
    assert plain.cross_split_groups == _spanning_groups(ds_plain) > 0
    assert np.bincount(ds_plain.split_codes).tolist() == [56, 12, 12]


def test_cli_round_trip_and_errors(tmp_path):
    write_release(tmp_path)
    out = tmp_path / "cli.h5"
    subset_dir = tmp_path / "dataset" / "des_deep_data"
    result = runner.invoke(
        app,
        ["import-deepgravilens", str(subset_dir), "--subset", "des_deep_data", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "groups of dihedral duplicates" in result.output
    assert len(LensDataset(out)) == 12
    again = runner.invoke(app, ["import-deepgravilens", str(tmp_path), "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    missing = runner.invoke(
        app,
        [
            "import-deepgravilens",
            str(tmp_path),
            "--subset",
            "lsst_data",
            "--out",
            str(tmp_path / "y.h5"),
        ],
    )
    assert missing.exit_code == 2 and "lsst_data" in missing.output
    bad_split = runner.invoke(
        app,
        [
            "import-deepgravilens",
            str(tmp_path),
            "--split",
            "0.5,0.5",
            "--out",
            str(tmp_path / "z.h5"),
        ],
    )
    assert bad_split.exit_code == 2 and "Traceback" not in bad_split.output
