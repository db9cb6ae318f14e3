"""evaluate_checkpoint: report files, metrics against scikit-learn, ensembles, TTA, errors, CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from typer.testing import CliRunner

import darklens
from darklens.cli import app
from darklens.data.h5 import DatasetWriter, LensDataset
from darklens.evaluate.run import evaluate_checkpoint
from darklens.predict import Predictor
from darklens.runs import load_checkpoint, save_checkpoint
from tests.helpers import FLOAT32_PROBA_TOLERANCE

CLASSES = ["no_sub", "cdm", "axion"]
runner = CliRunner()


def _save_variant(run: Path, out_dir: Path, *, seed: int = 1, **meta_changes) -> Path:
    """A copy of ``run``'s best checkpoint with every weight nudged (and meta entries replaced)."""
    model, meta = load_checkpoint(run)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    save_checkpoint(out_dir / "best", model, {**meta, **meta_changes})
    return out_dir


@pytest.fixture(scope="module")
def second_run(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_variant(trained_run, tmp_path_factory.mktemp("variant"))


@pytest.fixture(scope="module")
def test_split(toy_h5: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with LensDataset(toy_h5) as dataset:
        index = dataset.split_indices("test")
        return index, dataset.images(index), dataset.labels[index]


@pytest.fixture(scope="module")
def report(trained_run: Path, toy_h5: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = evaluate_checkpoint(trained_run, toy_h5, out, batch_size=7)
    finally:
        torch.set_num_threads(previous)
    return out, metrics


def _predictions(path: Path) -> tuple[list[dict[str, str]], np.ndarray]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, np.array([[float(r[f"p_{c}"]) for c in CLASSES] for r in rows])


def test_metrics_match_scikit_learn_on_the_predictor(report, trained_run, test_split):
    out, metrics = report
    index, images, labels = test_split
    proba = Predictor.from_checkpoint(trained_run).predict_proba(images)
    assert metrics["n_samples"] == len(index)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, proba.argmax(1)))
    assert metrics["macro_auc"] == pytest.approx(
        roc_auc_score(labels, proba, multi_class="ovr", average="macro"), abs=1e-9
    )
    rows, table = _predictions(out / "predictions.csv")
    assert [int(r["id"]) for r in rows] == index.tolist()
    assert [r["true"] for r in rows] == [CLASSES[k] for k in labels]
    np.testing.assert_allclose(table, proba, **FLOAT32_PROBA_TOLERANCE)


def test_metrics_json_records_the_evaluation(report, trained_run, toy_h5, test_split):
    out, metrics = report
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["accuracy"] == pytest.approx(metrics["accuracy"])
    # the toy dataset names no preset: darklens and the model's paper (deeplense_cnn)
    citations = stored["evaluation"].pop("citations")
    assert [c["key"] for c in citations] == ["darklens", "alexander2020"]
    assert darklens.__version__ in citations[0]["reference"]
    assert stored["evaluation"] == {
        "checkpoints": [str((trained_run / "best.json").resolve())],
        "dataset": str(toy_h5.resolve()),
        "split": "test",
        "tta": False,
        "ensemble_size": 1,
        "n_images": len(test_split[0]),
        "darklens_version": darklens.__version__,
    }


def test_report_is_self_contained_with_history_and_galleries(report):
    out, _ = report
    page = (out / "report.html").read_text()
    for forbidden in ('src="http', "href=", "<script", "<link", "url(", "@import"):
        assert forbidden not in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for figure in ("roc.png", "confusion.png", "training_curves.png", "gallery_correct.png"):
        assert (out / figure).is_file(), figure
    assert "Training history" in page and "ensemble_size" in page  # history + evaluation record
    assert "How to cite" in page and "arXiv:1909.07346" in page


def test_ensemble_is_the_mean_of_its_members(trained_run, second_run, toy_h5, test_split, tmp_path):
    _, images, _ = test_split
    metrics = evaluate_checkpoint([trained_run, second_run], toy_h5, tmp_path)
    first = Predictor.from_checkpoint(trained_run).predict_proba(images)
    second = Predictor.from_checkpoint(second_run).predict_proba(images)
    assert np.abs(first - second).max() > 1e-3  # the members really differ
    _, table = _predictions(tmp_path / "predictions.csv")
    np.testing.assert_allclose(table, (first + second) / 2, **FLOAT32_PROBA_TOLERANCE)
    assert metrics["evaluation"]["ensemble_size"] == 2
    assert len(metrics["evaluation"]["checkpoints"]) == 2


def test_tta_is_the_mean_over_the_eight_views(trained_run, toy_h5, test_split, tmp_path):
    _, images, _ = test_split
    evaluate_checkpoint(trained_run, toy_h5, tmp_path, tta=True)
    _, table = _predictions(tmp_path / "predictions.csv")
    predictor = Predictor.from_checkpoint(trained_run)
    turns = [np.rot90(images, k, axes=(2, 3)) for k in range(4)]
    views = turns + [np.flip(v, axis=3) for v in turns]
    by_hand = np.mean([predictor.predict_proba(v.copy(), tta=False) for v in views], axis=0)
    np.testing.assert_allclose(table, by_hand, rtol=1e-5, atol=1e-7)
    assert np.abs(by_hand - predictor.predict_proba(images)).max() > 1e-6  # TTA did something


def _dataset_with_classes(path: Path, class_names: list[str], channels: int = 1) -> Path:
    rng = np.random.default_rng(0)
    n = 6
    with DatasetWriter(path, n, (channels, 32, 32), class_names) as writer:
        writer.write(
            0,
            rng.normal(size=(n, channels, 32, 32)).astype(np.float32),
            np.arange(n) % len(class_names),
            np.full(n, 2, dtype=np.uint8),
        )
    return path


def test_mismatched_classes_and_inputs_are_clear_errors(trained_run, tmp_path):
    renamed = _dataset_with_classes(tmp_path / "renamed.h5", ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"renamed\.h5 has classes \['a', 'b', 'c'\]"):
        evaluate_checkpoint(trained_run, renamed, tmp_path / "r1")
    two_channel = _dataset_with_classes(tmp_path / "rgb.h5", CLASSES, channels=2)
    with pytest.raises(ValueError, match="2-channel images"):
        evaluate_checkpoint(trained_run, two_channel, tmp_path / "r2")
    reordered = _save_variant(trained_run, tmp_path / "reordered", class_names=CLASSES[::-1])
    with pytest.raises(ValueError, match="checkpoints disagree on classes"):
        evaluate_checkpoint([trained_run, reordered], renamed, tmp_path / "r3")
    _, meta = load_checkpoint(trained_run)
    bigger = _save_variant(
        trained_run, tmp_path / "bigger", preprocessing={**meta["preprocessing"], "img_size": 48}
    )
    with pytest.raises(ValueError, match="disagree on input.*48 px"):
        evaluate_checkpoint([trained_run, bigger], renamed, tmp_path / "r4")
    assert not (tmp_path / "r1").exists()


def test_split_errors(trained_run, toy_h5, tmp_path):
    with pytest.raises(KeyError, match="unknown split 'tset'"):
        evaluate_checkpoint(trained_run, toy_h5, tmp_path, split="tset")
    one_class = tmp_path / "one.h5"
    with DatasetWriter(one_class, 3, (1, 32, 32), CLASSES) as writer:
        writer.write(0, np.zeros((3, 1, 32, 32), np.float32), np.zeros(3, int), np.full(3, 2))
    with pytest.raises(ValueError, match="holds only class 'no_sub'"):
        evaluate_checkpoint(trained_run, one_class, tmp_path / "r")


def test_evaluate_cli(trained_run, toy_h5, tmp_path):
    out = tmp_path / "cli"
    result = runner.invoke(
        app,
        ["evaluate", "-c", str(trained_run), "--data", str(toy_h5), "--out", str(out), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "AUC axion" in result.output
    assert str(out / "report.html") in result.output.replace("\n", "")
    assert (out / "report.html").is_file()
    bad = runner.invoke(
        app, ["evaluate", "-c", str(trained_run), "--data", str(tmp_path / "nope.h5"), "-o", "x"]
    )
    assert bad.exit_code == 2 and "nope.h5" in bad.output


def test_truth_context_reads_what_the_report_bins_by(tmp_path):
    """Substructure datasets give the axion mass and the total subhalo mass per image; lens-finding
    datasets their lens truth and the undetectable lenses among the non-lenses."""
    from darklens.evaluate.run import truth_context
    from darklens.simulate.api import get_any_preset, simulate

    sub = get_any_preset("model_ii").override({"instrument.num_pix": "16"})
    path = simulate(sub, tmp_path / "sub.h5", n_per_class=4, seed=0).path
    with LensDataset(path) as dataset:
        rows = np.arange(len(dataset))
        context = truth_context(dataset, rows)
        labels = dataset.labels
        axion = context["truth"]["axion_mass_ev"]
        mass = context["truth"]["subhalo_mass_total_msun"]
        expected = np.nansum(dataset.truth("subhalo_mass_msun"), axis=1)
    assert np.all(np.isfinite(axion[labels == 2])) and np.all(np.isnan(axion[labels != 2]))
    np.testing.assert_allclose(mass[labels == 1], expected[labels == 1])
    assert np.all(np.isnan(mass[labels == 0])) and "undetectable" not in context
    fractions = "[0.5, 0, 0, 0, 0, 0, 0, 0, 0.5]"
    lens = get_any_preset("lensfind_space").override(
        {"instrument.num_pix": "32", "lookalikes.non_lens_fractions": fractions}
    )
    path = simulate(lens, tmp_path / "lens.h5", n=12, lens_fraction=(0.5,) * 3, seed=1).path
    with LensDataset(path) as dataset:
        context = truth_context(dataset, np.arange(len(dataset)))
        kinds = dataset.truth("lookalike_kind")
    assert {"theta_e_arcsec", "arc_snr", "source_magnitude", "mu_total"} <= set(context["truth"])
    np.testing.assert_array_equal(context["undetectable"], kinds == 8)
