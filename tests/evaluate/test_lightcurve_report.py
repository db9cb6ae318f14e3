"""Light-curve plots per class: statistics against numpy, the figure, and the report section."""

from __future__ import annotations

import base64
import io
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from darklens.evaluate import classification_metrics, evaluate_predictions, write_report
from darklens.evaluate.plots import (
    BAND_COLOURS,
    _most_confident_wrong,
    band_colours,
    check_light_curves,
    class_light_curve_quantiles,
    plot_light_curves,
)

CLASS_NAMES = ["no_lens", "galaxy_lens", "lensed_sn_ia", "lensed_sn_cc"]
BANDS = ["g", "r", "i", "z"]
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def make_transients(seed: int = 0, n: int = 48, epochs: int = 12, missing: float = 0.1):
    """Labels, probabilities and light curves [n, epochs, 4]: lensed SNe get a peak, NaN holes."""
    rng = np.random.default_rng(seed)
    k = len(CLASS_NAMES)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    time = np.arange(epochs)
    peak = np.exp(-0.5 * ((time - epochs / 2) / 2.0) ** 2)[None, :, None]
    curves = rng.normal(scale=0.2, size=(n, epochs, len(BANDS)))
    curves += (y >= 2)[:, None, None] * peak * (1.0 + np.arange(len(BANDS)))
    curves[rng.random(curves.shape) < missing] = np.nan
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba, curves


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


# ------------------------------------------------------------------------------------ statistics


def test_class_quantiles_match_numpy_on_the_finite_fluxes_of_each_class():
    y, _, curves = make_transients(seed=1)
    curves[y == 1, 3, 2] = np.nan  # one class loses every flux at one epoch and band
    levels = (0.16, 0.5, 0.84)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # all-NaN columns must not warn
        stats = class_light_curve_quantiles(curves, y, len(CLASS_NAMES), levels)
    assert stats.shape == (len(CLASS_NAMES), len(levels), *curves.shape[1:])
    for k in range(len(CLASS_NAMES)):
        members = curves[y == k]
        for t in range(curves.shape[1]):
            for b in range(curves.shape[2]):
                finite = members[:, t, b][np.isfinite(members[:, t, b])]
                if finite.size == 0:
                    assert np.isnan(stats[k, :, t, b]).all()
                else:
                    expected = np.percentile(finite, [100 * q for q in levels])
                    np.testing.assert_allclose(stats[k, :, t, b], expected, rtol=1e-12)
    assert np.isnan(stats[1, :, 3, 2]).all()


def test_class_medians_without_missing_fluxes_equal_numpy_medians():
    y, _, curves = make_transients(seed=2, missing=0.0)
    medians = class_light_curve_quantiles(curves, y, len(CLASS_NAMES), [0.5])[:, 0]
    for k in range(len(CLASS_NAMES)):
        np.testing.assert_allclose(medians[k], np.median(curves[y == k], axis=0), rtol=1e-12)


def test_absent_class_gives_nan_statistics():
    y, _, curves = make_transients(seed=3)
    y[y == 2] = 0
    stats = class_light_curve_quantiles(curves, y, len(CLASS_NAMES))
    assert np.isnan(stats[2]).all()
    assert np.isfinite(stats[0]).any()


@pytest.mark.parametrize(
    ("curves", "message"),
    [
        (np.zeros((6, 5)), r"\[N, epochs, bands\]"),
        (np.zeros((5, 5, 4)), "5 light curves for 6 labels"),
        (np.zeros((6, 0, 4)), "at least one"),
        (np.full((6, 5, 4), np.inf), "infinite"),
        (np.full((6, 5, 4), "a"), "real fluxes"),
    ],
)
def test_bad_light_curves_are_rejected(curves, message):
    with pytest.raises(ValueError, match=message):
        class_light_curve_quantiles(curves, np.arange(6) % 2, 2)


def test_check_light_curves_keeps_nan_and_returns_float64():
    curves = np.ones((2, 3, 1), dtype=np.float32)
    curves[0, 1, 0] = np.nan
    checked = check_light_curves(curves, 2)
    assert checked.dtype == np.float64
    assert np.isnan(checked[0, 1, 0]) and np.nansum(checked) == 5


def test_band_colours_are_fixed_for_survey_bands_and_distinct_otherwise():
    assert band_colours(BANDS) == [BAND_COLOURS[b] for b in BANDS]
    assert band_colours(["G", "R"]) == [BAND_COLOURS["g"], BAND_COLOURS["r"]]
    mixed = band_colours(["g", "VIS", "F160W"])
    assert len(set(mixed)) == 3 and mixed[0] == BAND_COLOURS["g"]
    assert len(band_colours([f"b{i}" for i in range(12)])) == 12


# ---------------------------------------------------------------------------------------- figure


def test_plot_light_curves_writes_a_png_and_adds_a_row_for_wrong_examples(tmp_path):
    y, proba, curves = make_transients(seed=4)
    plain = plot_light_curves(curves, y, CLASS_NAMES, tmp_path / "plain.png", band_names=BANDS)
    with_wrong = plot_light_curves(
        curves,
        y,
        CLASS_NAMES,
        tmp_path / "sub" / "wrong.png",
        band_names=BANDS,
        proba=proba,
        epochs_days=np.arange(curves.shape[1]) * 3.0,
        sample_ids=[f"sn_{i}" for i in range(len(y))],
    )
    assert plain == tmp_path / "plain.png" and with_wrong.is_file()
    plain_width, plain_height = png_size(plain)
    wrong_width, wrong_height = png_size(with_wrong)
    assert wrong_width == plain_width
    assert wrong_height > 1.5 * plain_height  # a second row per class
    wrapped = plot_light_curves(curves, y, CLASS_NAMES, tmp_path / "grid.png", ncols=2)
    assert png_size(wrapped)[0] < plain_width


def test_plot_light_curves_handles_absent_classes_and_missing_bands(tmp_path):
    y, proba, curves = make_transients(seed=5)
    y[y == 3] = 0
    curves[:, :, 1] = np.nan
    path = plot_light_curves(curves, y, CLASS_NAMES, tmp_path / "lc.png", proba=proba)
    assert png_size(path)[0] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"band_names": ["g", "r"]}, "2 band names"),
        ({"epochs_days": [0.0, 1.0]}, "one time per epoch"),
        ({"epochs_days": np.zeros(12)}, "strictly increasing"),
        ({"y_pred": np.zeros(48, dtype=int)}, "y_pred needs proba"),
        ({"proba": np.full((48, 3), 1 / 3)}, r"proba must be \[N, 4\]"),
        ({"sample_ids": ["a"]}, "1 sample_ids for 48"),
        ({"n_examples": -1}, "n_examples"),
        ({"ncols": 0}, "ncols"),
    ],
)
def test_plot_light_curves_rejects_bad_options(tmp_path, options, message):
    y, _, curves = make_transients(seed=6)
    with pytest.raises(ValueError, match=message):
        plot_light_curves(curves, y, CLASS_NAMES, tmp_path / "lc.png", **options)
    assert not (tmp_path / "lc.png").exists()


def test_plot_light_curves_rejects_labels_beyond_the_class_names(tmp_path):
    y, _, curves = make_transients(seed=7)
    with pytest.raises(ValueError, match="only 3 classes"):
        plot_light_curves(curves, y, CLASS_NAMES[:3], tmp_path / "lc.png")


# ---------------------------------------------------------------------------------------- report


def test_report_gets_a_light_curve_section(tmp_path):
    y, proba, curves = make_transients(seed=8)
    evaluate_predictions(
        y,
        proba,
        CLASS_NAMES,
        tmp_path,
        light_curves=curves,
        band_names=BANDS,
        epochs_days=np.arange(curves.shape[1]) * 2.5,
    )
    assert png_size(tmp_path / "light_curves.png")[0] > 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = re.search(r'<section id="light-curves"><h2>Light curves</h2>(.*?)</section>', page)
    assert section is not None
    assert "median" in section.group(1) and "16th to 84th percentile" in section.group(1)
    embedded = base64.b64decode(DATA_URI.search(section.group(1)).group(1))
    assert embedded == (tmp_path / "light_curves.png").read_bytes()
    Image.open(io.BytesIO(embedded)).verify()


def test_report_without_light_curves_has_no_section(tmp_path):
    y, proba, _ = make_transients(seed=9)
    write_report(
        tmp_path, classification_metrics(y, proba, CLASS_NAMES), CLASS_NAMES, y_true=y, proba=proba
    )
    assert "light-curves" not in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "light_curves.png").exists()


def test_report_reads_light_curves_once_through_a_reader(tmp_path):
    y, proba, curves = make_transients(seed=10, n=30)
    requested = []

    def reader(positions):
        requested.append(np.asarray(positions).copy())
        return curves[positions]

    metrics = classification_metrics(y, proba, CLASS_NAMES)
    write_report(
        tmp_path / "reader", metrics, CLASS_NAMES, y_true=y, proba=proba, light_curves=reader
    )
    assert len(requested) == 1 and requested[0].tolist() == list(range(len(y)))
    write_report(
        tmp_path / "array", metrics, CLASS_NAMES, y_true=y, proba=proba, light_curves=curves
    )
    reader_png = (tmp_path / "reader" / "light_curves.png").read_bytes()
    assert reader_png == (tmp_path / "array" / "light_curves.png").read_bytes()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"light_curves": np.zeros((47, 12, 4))}, "47 light curves for 48 predictions"),
        ({"light_curves": np.zeros((48, 12))}, r"\[N, epochs, bands\]"),
        ({"light_curves": lambda positions: np.zeros((3, 12, 4))}, "returned 3 light curves"),
        ({"band_names": BANDS}, "pass light_curves too"),
    ],
)
def test_report_rejects_bad_light_curves_before_writing(tmp_path, options, message):
    y, proba, _ = make_transients(seed=11)
    metrics = classification_metrics(y, proba, CLASS_NAMES)
    with pytest.raises(ValueError, match=message):
        write_report(tmp_path / "out", metrics, CLASS_NAMES, y_true=y, proba=proba, **options)
    assert not (tmp_path / "out").exists()


def test_most_confident_wrong_ranks_misclassified_members_by_probability():
    y, proba, _ = make_transients(seed=12, n=60)
    predicted = proba.argmax(axis=1)
    for k in range(len(CLASS_NAMES)):
        chosen = _most_confident_wrong(np.flatnonzero(y == k), predicted, proba, k, 3)
        pool = [i for i in range(len(y)) if y[i] == k and predicted[i] != k]
        expected = sorted(pool, key=lambda i: -proba[i, predicted[i]])[:3]
        assert chosen.tolist() == expected


def test_two_class_report_uses_the_threshold_decisions(tmp_path):
    y, proba, curves = make_transients(seed=13, n=40)
    y01 = (y >= 2).astype(int)
    score = np.clip(0.4 * y01 + 0.6 * proba[:, 0], 0, 1)
    proba01 = np.stack([1 - score, score], axis=1)
    names = ["non-lens", "lensed SN"]
    for threshold in (0.05, 0.95):
        evaluate_predictions(
            y01, proba01, names, tmp_path / str(threshold), threshold=threshold, light_curves=curves
        )
    low, high = ((tmp_path / t / "light_curves.png").read_bytes() for t in ("0.05", "0.95"))
    assert low != high  # other decisions, other misclassified examples
    assert 'id="light-curves"' in (tmp_path / "0.05" / "report.html").read_text(encoding="utf-8")
