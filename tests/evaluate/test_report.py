"""The evaluation report: files, self-containment, escaping, galleries, headless-browser check."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from darklens.config import Config
from darklens.data.composite import colour_composite
from darklens.evaluate import classification_metrics, evaluate_predictions, plots, write_report
from darklens.evaluate.plots import (
    display_image,
    gallery_image,
    plot_gallery,
    plot_lens_roc,
    plot_metrics_vs_truth,
    plot_pr,
    plot_roc,
    plot_training_curves,
)
from darklens.evaluate.report import most_confident
from darklens.evaluate.science import TruthSpec

CLASS_NAMES = ["no_sub", "cdm", "axion"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@dataclasses.dataclass(frozen=True)
class TinyRunConfig(Config):
    model: str = "resnet18"
    learning_rate: float = 1e-3
    note: str = "<b>not markup</b>"


def make_predictions(seed: int = 0, n: int = 36, k: int = 3, channels: int = 1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    images = rng.normal(size=(n, channels, 16, 16)).astype(np.float32)
    return y, proba, images


HISTORY = {
    "epoch": [1, 2, 3],
    "train_loss": [1.0, 0.8, 0.7],
    "val_loss": [1.1, 0.9, 0.85],
    "train_acc": [0.4, 0.55, 0.6],
    "val_acc": [0.35, 0.5, 0.52],
    "val_macro_auc": [0.6, 0.7, 0.72],
}


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    """A three-class report with every optional part, written once for the module."""
    out = tmp_path_factory.mktemp("report")
    y, proba, images = make_predictions()
    ids = [f"lens_{i:03d}" for i in range(len(y))]
    metrics = evaluate_predictions(
        y,
        proba,
        CLASS_NAMES,
        out,
        images=images,
        image_ids=ids,
        history=HISTORY,
        config=TinyRunConfig(),
        title="Test <report> & co",
    )
    return out, metrics, y, proba


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(data, validate=True) for data in DATA_URI.findall(page)]


def test_report_writes_metrics_json_and_figures(full_report):
    out, metrics, y, proba = full_report
    stored = json.loads((out / "metrics.json").read_text())
    core = {k: v for k, v in stored.items() if k not in ("uncertainty", "warnings")}
    assert core == json.loads(json.dumps(classification_metrics(y, proba, CLASS_NAMES)))
    assert stored == json.loads(json.dumps(metrics))
    intervals = stored["uncertainty"]["intervals"]
    assert intervals["accuracy"][0] <= stored["accuracy"] <= intervals["accuracy"][1]
    assert set(intervals["auc_per_class"]) == set(CLASS_NAMES)
    assert any("only 36 test images" in w for w in stored["warnings"])
    expected = {"roc", "confusion", "training_curves", "gallery_correct", "gallery_wrong"}
    assert {p.stem for p in out.glob("*.png")} == expected
    for png in out.glob("*.png"):
        with Image.open(png) as image:
            image.verify()


def test_report_is_self_contained(full_report):
    out = full_report[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for forbidden in ('src="http', "href=", "<script", "<link", "url(", "@import"):
        assert forbidden not in lowered, forbidden
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert len(sources) == 5
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    for blob in embedded_pngs(page):
        assert blob.startswith(PNG_SIGNATURE)
        image = Image.open(io.BytesIO(blob))
        image.verify()


def test_report_tables_show_metrics_and_per_class_scores(full_report):
    out, metrics, _, _ = full_report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="metrics-table"' in page and 'id="per-class-table"' in page
    assert f"{metrics['macro_auc']:.4f}" in page
    per_class = page[page.index('id="per-class-table"') :]
    for name in CLASS_NAMES:
        row = re.search(rf"<th scope=\"row\">{name}</th>(.*?)</tr>", per_class).group(1)
        scores = metrics["classification_report"][name]
        assert f"{scores['recall']:.4f}" in row
        assert f">{scores['support']}<" in row
        assert f"{metrics['auc_per_class'][name]:.4f}" in row


def test_report_escapes_interpolated_text(full_report):
    out = full_report[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Test &lt;report&gt; &amp; co" in page
    assert "<report>" not in page
    assert "&lt;b&gt;not markup&lt;/b&gt;" in page
    assert "<b>" not in page
    assert "learning_rate: 0.001" in page


def test_hostile_class_names_are_escaped(tmp_path):
    y, proba, _ = make_predictions(seed=1)
    names = ['<script>alert("x")</script>', "b&b", "c"]
    report = write_report(
        tmp_path, classification_metrics(y, proba, names), names, y_true=y, proba=proba
    )
    page = report.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "b&amp;b" in page


def test_two_class_report_has_lens_finding_scores_and_pr_curve(tmp_path):
    y, proba, _ = make_predictions(seed=2, n=40, k=2)
    metrics = evaluate_predictions(y, proba, ["non-lens", "lens"], tmp_path)
    assert (tmp_path / "pr.png").is_file()
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "TPR0: TPR before the first false positive" in page
    assert f"{metrics['tpr10']:.4f}" in page
    assert len(embedded_pngs(page)) == 3  # roc, confusion, pr


def test_report_is_reproducible(tmp_path):
    y, proba, images = make_predictions(seed=3)
    pages = []
    for run in ("a", "b"):
        evaluate_predictions(y, proba, CLASS_NAMES, tmp_path / run, images=images)
        pages.append((tmp_path / run / "report.html").read_bytes())
    assert pages[0] == pages[1]


def test_most_confident_selects_right_and_wrong_by_probability():
    y, proba, _ = make_predictions(seed=4, n=50)
    predicted = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    for correct in (True, False):
        chosen = most_confident(y, proba, correct, n=5)
        pool = [i for i in range(len(y)) if (predicted[i] == y[i]) == correct]
        expected = sorted(pool, key=lambda i: -confidence[i])[:5]
        assert chosen.tolist() == expected


def test_gallery_reads_images_through_a_reader_callable(tmp_path):
    y, proba, images = make_predictions(seed=5)
    requested = []

    def reader(indices):
        requested.append(np.asarray(indices).copy())
        return images[indices]

    write_report(
        tmp_path / "reader",
        classification_metrics(y, proba, CLASS_NAMES),
        CLASS_NAMES,
        y_true=y,
        proba=proba,
        images=reader,
        gallery_size=4,
    )
    write_report(
        tmp_path / "array",
        classification_metrics(y, proba, CLASS_NAMES),
        CLASS_NAMES,
        y_true=y,
        proba=proba,
        images=images,
        gallery_size=4,
    )
    assert [r.tolist() for r in requested] == [
        most_confident(y, proba, True, 4).tolist(),
        most_confident(y, proba, False, 4).tolist(),
    ]
    for name in ("gallery_correct.png", "gallery_wrong.png"):
        assert (tmp_path / "reader" / name).read_bytes() == (tmp_path / "array" / name).read_bytes()


def test_report_input_errors(tmp_path):
    y, proba, images = make_predictions(seed=6)
    metrics = classification_metrics(y, proba, CLASS_NAMES)
    with pytest.raises(ValueError, match="computed on 36 samples but y_true has 35"):
        write_report(tmp_path, metrics, CLASS_NAMES, y_true=y[:-1], proba=proba[:-1])
    with pytest.raises(ValueError, match="lack classification_report"):
        write_report(tmp_path, {"accuracy": 0.5}, CLASS_NAMES, y_true=y, proba=proba)
    with pytest.raises(ValueError, match="35 images for 36 predictions"):
        write_report(tmp_path, metrics, CLASS_NAMES, y_true=y, proba=proba, images=images[:-1])
    with pytest.raises(ValueError, match="2 image_ids for 36"):
        write_report(
            tmp_path,
            metrics,
            CLASS_NAMES,
            y_true=y,
            proba=proba,
            images=images,
            image_ids=["a", "b"],
        )
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        write_report(
            tmp_path, metrics, CLASS_NAMES, y_true=y, proba=proba, config=tmp_path / "missing.yaml"
        )


# ------------------------------------------------------------------------------------ plots


def test_training_curves_from_csv_with_missing_columns_and_gaps(tmp_path):
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,train_loss,val_loss\n1,1.0,1.2\n2,0.8,\n3,0.6,0.9\n")
    out = plot_training_curves(csv_path, tmp_path / "curves.png")
    with Image.open(out) as image:
        assert image.size[0] > 500


def test_training_curves_errors(tmp_path):
    with pytest.raises(ValueError, match="none of the known columns"):
        plot_training_curves({"lr": [0.1, 0.01]}, tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        plot_training_curves(tmp_path / "nope.csv", tmp_path / "x.png")
    with pytest.raises(ValueError, match="'val_loss' row 1 is not a number"):
        plot_training_curves({"val_loss": [1.0, "abc"]}, tmp_path / "x.png")


def test_display_image_stretches_and_composites():
    rng = np.random.default_rng(0)
    grey = rng.normal(size=(1, 8, 8))
    minmax = display_image(grey, "minmax")
    expected = (grey[0] - grey.min()) / (grey.max() - grey.min())
    np.testing.assert_allclose(minmax, expected)
    asinh = display_image(grey, "asinh")
    assert asinh.shape == (8, 8) and asinh.min() == 0.0 and asinh.max() == pytest.approx(1.0)
    assert np.all(asinh >= minmax - 1e-12)  # asinh lifts faint pixels
    rgb = display_image(rng.normal(size=(4, 8, 8)))
    assert rgb.shape == (8, 8, 3)
    assert np.all(display_image(np.full((8, 8), 3.0)) == 0)
    with pytest.raises(ValueError, match="unknown stretch"):
        display_image(grey, "log")
    with pytest.raises(ValueError, match="NaN"):
        display_image(np.full((1, 4, 4), np.nan))


def test_plot_gallery_rejects_mismatched_titles(tmp_path):
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        plot_gallery(np.zeros((3, 1, 8, 8)), ["a", "b"], tmp_path / "g.png")


# ------------------------------------------------------------------------ headless browser


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(
    find_chromium() is None,
    reason="no Chromium on this machine (install it with `apt-get install chromium`)",
)
def test_report_renders_in_headless_chromium(full_report, tmp_path):
    out, metrics, _, _ = full_report
    url = (out / "report.html").resolve().as_uri()
    browser = [find_chromium(), *CHROMIUM_FLAGS]
    shot = tmp_path / "shot.png"
    screenshot = subprocess.run(
        [
            *browser,
            f"--user-data-dir={tmp_path / 'p1'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert screenshot.returncode == 0, screenshot.stderr.decode()[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        colours = image.convert("L").getextrema()
    assert colours[0] < 100 < colours[1]  # dark text on a light page, not a blank capture
    dom = subprocess.run(
        [*browser, f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", url],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    rendered = dom.stdout.decode()
    assert 'id="metrics-table"' in rendered
    assert "Macro AUC (one-vs-rest)" in rendered
    assert f"{metrics['accuracy']:.4f}" in rendered
    assert len(DATA_URI.findall(rendered)) == 5


# ------------------------------------------------------------- lens-finding science report


def lens_report_inputs(seed: int = 3, n: int = 80):
    """Two-class predictions with 3-band images, truth columns and undetectable lenses."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    score = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    proba = np.column_stack([1 - score, score])
    images = rng.normal(0, 0.01, size=(n, 3, 24, 24)).astype(np.float32)
    images[:, 2, 10:14, 10:14] += 1.0  # a red galaxy: reddest band brightest
    theta = np.where(y == 1, rng.uniform(0.3, 2.0, n), np.nan)
    snr = np.where(y == 1, rng.uniform(20, 200, n), 0.0)
    hidden = (y == 0) & (np.arange(n) % 7 == 0)
    return y, proba, images, {"theta_e_arcsec": theta, "arc_snr": snr}, hidden


LENS_SPECS = (
    TruthSpec("theta_e_arcsec", "lens", "θ_E (arcsec)"),
    TruthSpec("arc_snr", "lens", "arc S/N", log=True),
)


@pytest.fixture(scope="module")
def lens_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("lens_report")
    y, proba, images, truth, hidden = lens_report_inputs()
    metrics = evaluate_predictions(
        y,
        proba,
        ["non_lens", "lens"],
        out,
        images=images,
        truth=truth,
        truth_specs=LENS_SPECS,
        undetectable=hidden,
        zero_points=[25.0, 25.5, 26.0],
        pixel_scale_arcsec=0.2,
    )
    return out, metrics


def test_lens_report_has_intervals_truth_and_undetectable_sections(lens_report):
    out, metrics = lens_report
    stored = json.loads((out / "metrics.json").read_text())
    assert set(stored["vs_truth"]) == {"theta_e_arcsec", "arc_snr"}
    assert stored["undetectable_lenses"]["n"] > 0
    assert {"auc", "tpr0", "tpr10", "tpr_at_fpr_1e-03"} <= set(stored["uncertainty"]["intervals"])
    page = (out / "report.html").read_text(encoding="utf-8")
    for anchor in ('id="warnings"', 'id="uncertainty-table"', 'id="truth-table"',
                   'id="undetectable-table"', "Against the truth"):  # fmt: skip
        assert anchor in page, anchor
    assert (out / "metrics_vs_truth.png").is_file()
    # warnings come before the metrics table
    assert page.index('id="warnings"') < page.index('id="metrics-table"')


def test_gallery_shows_multiband_cutouts_as_the_show_composite(lens_report):
    _, _, images, _, _ = lens_report_inputs()
    zero_points = [25.0, 25.5, 26.0]
    np.testing.assert_array_equal(
        gallery_image(images[0], zero_points), colour_composite(images[0], zero_points)
    )
    rgb = gallery_image(images[0], zero_points)
    centre = rgb[10:14, 10:14].mean(axis=(0, 1))
    assert centre[0] > centre[2]  # the reddest band is shown red, not blue


def _captured_figures(monkeypatch) -> list:
    """Figures passed to plots._save (still open), for inspecting what was drawn."""
    saved = []
    original = plots._save

    def keep(figure, path):
        saved.append(figure)
        return original(figure, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def test_scale_bar_is_a_round_number_of_arcsec(tmp_path, monkeypatch):
    figures = _captured_figures(monkeypatch)
    plot_gallery(np.random.default_rng(0).normal(size=(2, 3, 50, 50)), ["a", "b"],
                 tmp_path / "g.png", pixel_scale_arcsec=0.1)  # fmt: skip
    ax = figures[0].axes[0]
    (bar,) = [line for line in ax.get_lines() if line.get_color() == "white"]
    assert np.ptp(bar.get_xdata()) == pytest.approx(1.0 / 0.1)  # 1″ in a 5″ cutout
    assert [t.get_text() for t in ax.texts] == ["1″"]
    with pytest.raises(ValueError, match="pixel_scale_arcsec"):
        plot_gallery(np.zeros((1, 1, 8, 8)), ["a"], tmp_path / "h.png", pixel_scale_arcsec=0)


def test_legends_cover_no_curve(tmp_path, monkeypatch, lens_report):
    """No plotted point of any curve lies inside any legend's box, for every report figure."""
    figures = _captured_figures(monkeypatch)
    y, proba, _, truth, _ = lens_report_inputs(n=300)
    plot_lens_roc(y, proba[:, 1], tmp_path / "roc.png", threshold=0.5)
    plot_pr(y, proba[:, 1], tmp_path / "pr.png", threshold=0.5)
    y3, p3, _ = make_predictions(seed=4, n=90)
    plot_roc(y3, p3, CLASS_NAMES, tmp_path / "roc3.png")
    plot_training_curves(HISTORY, tmp_path / "history.png")
    plot_metrics_vs_truth(lens_report[1]["vs_truth"], tmp_path / "truth.png")
    checked = 0
    for figure in figures:
        figure.canvas.draw()
        for ax in figure.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            box = legend.get_window_extent()
            for line in ax.get_lines():
                points = ax.transData.transform(line.get_xydata())
                points = points[np.all(np.isfinite(points), axis=1)]
                inside = (
                    (points[:, 0] > box.x0) & (points[:, 0] < box.x1)
                    & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
                )  # fmt: skip
                assert not inside.any(), f"legend covers {line.get_label()!r}"
            checked += 1
    assert checked >= 6


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine")
def test_lens_report_renders_its_science_sections_in_headless_chromium(lens_report, tmp_path):
    out, metrics = lens_report
    url = (out / "report.html").resolve().as_uri()
    browser = [find_chromium(), *CHROMIUM_FLAGS]
    shot = tmp_path / "shot.png"
    screenshot = subprocess.run(
        [*browser, f"--user-data-dir={tmp_path / 'p1'}", f"--screenshot={shot}",
         "--window-size=1200,3000", url],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert screenshot.returncode == 0, screenshot.stderr.decode()[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.min() < 100 < pixels.max()  # rendered, not blank
    colour = np.abs(pixels[..., 0] - pixels[..., 2]).max()
    assert colour > 60  # coloured figures (composites, curves), not only grey text
    dom = subprocess.run(
        [*browser, f"--user-data-dir={tmp_path / 'p2'}", "--dump-dom", url],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    rendered = dom.stdout.decode()
    assert 'id="uncertainty-table"' in rendered and 'id="truth-table"' in rendered
    assert "Lenses below the lens definition" in rendered
    low, high = metrics["uncertainty"]["intervals"]["auc"]
    assert f"{low:.4f} – {high:.4f}" in rendered
    # ROC, confusion, PR, metrics vs truth and the two galleries
    assert len(DATA_URI.findall(rendered)) == 6
