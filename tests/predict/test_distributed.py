"""predict on Ray Data: the same scores as the single-process table, in a Parquet folder."""

import csv

import numpy as np
import pytest
from typer.testing import CliRunner

from darklens.cli import app
from darklens.data.h5 import LensDataset
from darklens.predict.batch import predict_files
from darklens.predict.distributed import predict_ray, read_predictions, work_units


def test_ray_scores_equal_the_single_process_table(ray_cluster, trained_run, toy_h5, tmp_path):
    folder = tmp_path / "cutouts"
    folder.mkdir()
    with LensDataset(toy_h5) as dataset:
        for i in range(5):
            np.save(folder / f"cutout_{i}.npy", dataset.images([i])[0])
    inputs = [toy_h5, folder]
    rows = predict_files(trained_run, inputs, tmp_path / "single.csv", batch_size=16)
    out = tmp_path / "scores"
    args = ["predict", "--checkpoint", str(trained_run), str(toy_h5), str(folder)]
    args += ["--out", str(out), "--ray", "local", "--ray-workers", "2", "--batch-size", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {rows} rows" in result.output and rows == 95
    assert len(work_units(inputs, None, False, rows=40)) == 3 + 5  # 90 rows in 3 units, 5 files
    table = read_predictions(out).to_pydict()
    with open(tmp_path / "single.csv") as handle:
        single = list(csv.DictReader(handle))
    assert table["id"] == [row["id"] for row in single]
    assert table["predicted"] == [row["predicted"] for row in single]
    for name in ("p_no_sub", "p_cdm", "p_axion", "confidence"):
        expected = np.array([float(row[name]) for row in single])
        np.testing.assert_allclose(table[name], expected, rtol=0, atol=1e-6, err_msg=name)
    with pytest.raises(FileExistsError):
        predict_ray(trained_run, inputs, out)
