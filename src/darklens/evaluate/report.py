"""The standard evaluation report: ``metrics.json``, PNG figures and one self-contained HTML page.

``report.html`` embeds every figure as a base64 ``data:`` URI and carries its CSS inline; it loads
nothing from anywhere and runs no scripts, so it can be mailed, archived or opened offline. Every
string put into it is HTML-escaped.

Two-class (lens-finding) reports score class 1 by its probability: the ROC figure adds a panel
with the false-positive rate on a log axis, the ROC and precision-recall figures mark the
operating point at the metrics' ``decision_threshold``, the confusion matrix uses that threshold,
and the galleries rank the hardest cases: the highest-scored non-lenses (the worst false
positives) and the lowest-scored lenses (the lenses most easily missed).

Lensed-transient data sets can add their light curves ``[N, epochs, bands]``: a "Light curves"
section shows each true class's median flux per epoch and band with its 16-84 % range, examples,
and the most confidently misclassified members of each class.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from darklens import __version__
from darklens.config import Config
from darklens.evaluate.metrics import (
    DEFAULT_LENS_RATE,
    check_class_names,
    check_multiclass,
    classification_metrics,
    confusion_matrix,
    two_class_predictions,
)
from darklens.evaluate.plots import (
    check_light_curves,
    plot_confusion,
    plot_gallery,
    plot_lens_roc,
    plot_light_curves,
    plot_metrics_vs_truth,
    plot_pr,
    plot_roc,
    plot_training_curves,
)
from darklens.evaluate.science import TruthSpec, add_science_metrics

METRICS_FILE, REPORT_FILE = "metrics.json", "report.html"
GALLERY_SIZE = 12
REQUIRED_METRIC_KEYS = ("classification_report", "auc_per_class")

# Scalar metrics shown first in the summary table, with their labels; other scalars follow.
METRIC_LABELS: dict[str, str] = {
    "n_samples": "Samples evaluated",
    "accuracy": "Accuracy",
    "macro_auc": "Macro AUC (one-vs-rest)",
    "micro_auc": "Micro AUC (pooled one-vs-rest)",
    "ovo_macro_auc": "Macro AUC (one-vs-one, Hand & Till)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
    "precision_weighted": "Precision (weighted)",
    "recall_weighted": "Recall (weighted)",
    "f1_weighted": "F1 (weighted)",
    "tpr0": "TPR0: TPR before the first false positive (Metcalf et al. 2019)",
    "tpr10": "TPR10: TPR before the tenth false positive (Metcalf et al. 2019)",
    "tpr_at_fpr_1e-03": "TPR at false-positive rate ≤ 1e-3",
    "tpr_at_fpr_1e-04": "TPR at false-positive rate ≤ 1e-4",
    "pr_auc": "Average precision (PR AUC)",
    "decision_threshold": "Decision threshold (lens when score > threshold)",
    "precision_at_threshold": "Precision at the threshold (this set)",
    "recall_at_threshold": "Recall (TPR) at the threshold",
    "fpr_at_threshold": "False positive rate at the threshold",
    "lens_rate": "Survey lens rate assumed (lenses per image)",
    "fp_per_lens": "False positives per true lens in the survey: (FPR/TPR)(1-rate)/rate",
    "survey_precision": "Precision expected in the survey: 1/(1 + FP per lens)",
}

ImageSource = np.ndarray | Callable[[np.ndarray], np.ndarray]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f6f7f9; color: #1d2330; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #dfe3ea; padding-bottom: 4px; margin-top: 2em; }
p.meta { color: #5a6272; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.95em; }
th, td { padding: 5px 12px; border-bottom: 1px solid #e5e8ee; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #eef1f6; }
tr.avg td { font-style: italic; background: #fafbfc; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e5e8ee; }
figcaption { color: #5a6272; font-size: 0.9em; margin-top: 4px; }
pre { background: #f3f4f7; padding: 12px; overflow-x: auto; font-size: 0.85em; }
p.note { color: #5a6272; font-size: 0.9em; }
ul.warnings { background: #fff6e0; border-left: 4px solid #e0a100; padding: 8px 12px 8px 28px; }
"""


# ---------------------------------------------------------------------------------------- check


def _check_metrics(metrics: Mapping[str, Any], names: list[str], n_samples: int) -> None:
    missing = [key for key in REQUIRED_METRIC_KEYS if key not in metrics]
    if missing:
        raise ValueError(
            f"metrics lack {', '.join(missing)}; build them with classification_metrics()"
        )
    if "n_samples" in metrics and metrics["n_samples"] != n_samples:
        raise ValueError(
            f"metrics were computed on {metrics['n_samples']} samples but y_true has "
            f"{n_samples}; pass the predictions the metrics came from"
        )
    unknown = sorted(set(metrics["auc_per_class"]) - set(names))
    if unknown:
        raise ValueError(f"metrics name classes {unknown} that are not in class_names {names}")


def _check_image_ids(image_ids: Sequence[Any] | None, n_samples: int) -> list[str]:
    if image_ids is None:
        return [f"#{i}" for i in range(n_samples)]
    ids = [str(i) for i in image_ids]
    if len(ids) != n_samples:
        raise ValueError(f"got {len(ids)} image_ids for {n_samples} predictions")
    return ids


# ---------------------------------------------------------------------------------- JSON output


def json_safe(value: Any) -> Any:
    """A copy of ``value`` with numpy types made plain and NaN/inf replaced by None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_metrics_json(metrics: Mapping[str, Any], path: str | Path) -> Path:
    """Write metrics as strict JSON (NaN stored as null)."""
    out = Path(path)
    out.write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n")
    return out


# ------------------------------------------------------------------------------------- gallery


def most_confident(y_true: Any, proba: Any, correct: bool, n: int = GALLERY_SIZE) -> np.ndarray:
    """Indices of the ``n`` right (or wrong) predictions with the highest predicted probability.

    Ordered by decreasing probability of the predicted class; ties keep index order.
    """
    labels, probs = check_multiclass(y_true, proba)
    predicted = np.argmax(probs, axis=1)
    chosen = np.flatnonzero((predicted == labels) == correct)
    confidence = probs[chosen, predicted[chosen]]
    return chosen[np.argsort(-confidence, kind="stable")[:n]]


def hardest_lens_cases(
    y_true01: Any, score: Any, n: int = GALLERY_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` highest-scored non-lenses (label 0) and the ``n`` lowest-scored lenses
    (label 1), each ranked worst first; ties keep index order."""
    labels = np.asarray(y_true01)
    values = np.asarray(score, dtype=np.float64)
    if labels.shape != values.shape or labels.ndim != 1:
        raise ValueError(
            f"got {labels.shape} labels for {values.shape} scores; need two 1-D arrays"
        )
    non_lenses = np.flatnonzero(labels == 0)
    lenses = np.flatnonzero(labels == 1)
    top_non_lenses = non_lenses[np.argsort(-values[non_lenses], kind="stable")[:n]]
    bottom_lenses = lenses[np.argsort(values[lenses], kind="stable")[:n]]
    return top_non_lenses, bottom_lenses


def _fetch_images(
    images: Any, indices: np.ndarray, n_samples: int, what: str = "images"
) -> np.ndarray:
    """Images (or other per-sample ``what``) at ``indices`` from an array-like ``[N, ...]`` or a
    reader ``f(indices)``."""
    if callable(images):
        block = np.asarray(images(indices))
    else:
        if len(images) != n_samples:
            raise ValueError(f"got {len(images)} {what} for {n_samples} predictions")
        order = np.argsort(indices)
        sorted_block = np.asarray(images[indices[order]])
        block = np.empty_like(sorted_block)
        block[order] = sorted_block
    if block.ndim == 0 or block.shape[0] != indices.size:
        count = block.shape[0] if block.ndim else 0
        raise ValueError(f"the {what} reader returned {count} {what} for {indices.size} positions")
    return block


def _gallery_titles(
    indices: np.ndarray, labels: np.ndarray, probs: np.ndarray, names: list[str], ids: list[str]
) -> list[str]:
    titles = []
    for i in indices:
        pred = int(np.argmax(probs[i]))
        titles.append(
            f"{ids[i]}\ntrue: {names[labels[i]]}  pred: {names[pred]}\np = {probs[i, pred]:.3f}"
        )
    return titles


# ---------------------------------------------------------------------------------------- HTML


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float, np.integer, np.floating))


def _summary_table(metrics: Mapping[str, Any]) -> str:
    keys = [key for key in METRIC_LABELS if key in metrics]
    keys += [key for key, v in metrics.items() if key not in METRIC_LABELS and _is_scalar(v)]
    rows = "".join(
        f'<tr><th scope="row">{_esc(METRIC_LABELS.get(key, key))}</th>'
        f'<td class="num">{_esc(_fmt(metrics[key]))}</td></tr>'
        for key in keys
    )
    return (
        '<table id="metrics-table"><thead><tr><th>Metric</th><th class="num">Value</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _per_class_table(metrics: Mapping[str, Any], names: list[str]) -> str:
    report = metrics["classification_report"]
    auc = metrics["auc_per_class"]
    entries = [(name, name, "", _fmt(auc.get(name))) for name in names] + [
        ("macro average", "macro avg", "avg", _fmt(metrics.get("macro_auc"))),
        ("weighted average", "weighted avg", "avg", ""),
    ]
    rows = []
    for label, key, css, auc_cell in entries:
        scores = report.get(key)
        if scores is None:
            raise ValueError(f"the classification report in metrics has no entry {key!r}")
        cells = [scores["precision"], scores["recall"], scores["f1-score"], scores["support"]]
        rows.append(
            f'<tr class="{css}"><th scope="row">{_esc(label)}</th>'
            + "".join(f'<td class="num">{_esc(_fmt(c))}</td>' for c in cells)
            + f'<td class="num">{_esc(auc_cell)}</td></tr>'
        )
    header = "".join(
        f'<th class="num">{h}</th>' for h in ("Precision", "Recall", "F1", "Support", "AUC (OvR)")
    )
    return (
        f'<table id="per-class-table"><thead><tr><th>Class</th>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _figure_html(path: Path, caption: str) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{_esc(caption)}">'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _config_text(config: Any) -> str:
    """A run configuration as YAML text (Config, mapping, YAML/JSON file path or plain text)."""
    if isinstance(config, Config):
        return config.to_yaml()
    if isinstance(config, Path):
        if not config.is_file():
            raise FileNotFoundError(f"config file {config} does not exist")
        return config.read_text()
    if isinstance(config, Mapping):
        plain = json_safe(config)
        try:
            return yaml.safe_dump(plain, sort_keys=False)
        except yaml.YAMLError:
            return json.dumps(plain, indent=2, default=str)
    return str(config)


def _citations_html(citations: Sequence[Mapping[str, Any]]) -> str:
    """The works a report rests on (see :mod:`darklens.citations`), one list item each."""
    items = []
    for entry in citations:
        links = [f"doi:{entry['doi']}" if entry.get("doi") else ""]
        links += [f"arXiv:{entry['arxiv']}" if entry.get("arxiv") else "", entry.get("url", "")]
        where = "; ".join(link for link in links if link)
        items.append(
            f"<li>{_esc(entry.get('reference', entry.get('key', '')))}"
            f"{f' ({_esc(where)})' if where else ''} — {_esc(entry.get('why', ''))}</li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _page(title: str, meta: str, sections: list[tuple[str, str, str]]) -> str:
    body = "".join(
        f'<section id="{_esc(anchor)}"><h2>{_esc(heading)}</h2>{content}</section>'
        for anchor, heading, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f'<body><main><h1>{_esc(title)}</h1><p class="meta">{_esc(meta)}</p>{body}'
        "</main></body></html>\n"
    )


# -------------------------------------------------------------------------------------- report


def write_report(
    out_dir: str | Path,
    metrics: Mapping[str, Any],
    class_names: Sequence[str],
    *,
    y_true: Any,
    proba: Any,
    images: ImageSource | None = None,
    image_ids: Sequence[Any] | None = None,
    history: Any = None,
    config: Any = None,
    title: str = "darklens evaluation",
    gallery_size: int = GALLERY_SIZE,
    light_curves: ImageSource | None = None,
    band_names: Sequence[str] | None = None,
    epochs_days: Sequence[float] | None = None,
    light_curve_label: str = "Flux",
    zero_points: Sequence[float] | None = None,
    pixel_scale_arcsec: float | None = None,
) -> Path:
    """Write ``metrics.json``, PNG figures and a self-contained ``report.html``; return its path.

    Metrics entries added by :func:`darklens.evaluate.science.add_science_metrics` get their
    own sections: ``warnings`` first, ``uncertainty`` (bootstrap intervals), ``vs_truth`` (a
    figure and table per truth column) and ``undetectable_lenses``. Multi-band gallery images
    are colour composites (``zero_points`` per band when known) with an arcsec scale bar when
    ``pixel_scale_arcsec`` is given.

    ``metrics`` come from :func:`classification_metrics` on the same ``y_true``/``proba``.
    ``images`` (``[N, C, H, W]``, aligned with ``y_true``, or a reader such as
    ``LensDataset.images`` called with index arrays) adds galleries of the most confident right
    and wrong predictions, labelled with ``image_ids``. ``history`` (CSV path, column mapping or
    DataFrame) adds training curves; ``config`` (a Config, mapping, file path or text) is shown
    verbatim. ``light_curves`` (``[N, epochs, bands]`` fluxes aligned with ``y_true``, NaN where
    missing, or a reader called once with all positions ``0..N-1``) adds per-class light-curve
    plots (:func:`~darklens.evaluate.plots.plot_light_curves`), with ``band_names`` in the legend
    and ``epochs_days`` (one time per epoch) on the x axis instead of the epoch index;
    ``light_curve_label`` names their y axis (e.g. when they are scaled as the models see them).
    """
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    _check_metrics(metrics, names, labels.shape[0])
    ids = _check_image_ids(image_ids, labels.shape[0])
    if gallery_size < 1:
        raise ValueError(f"gallery_size must be at least 1, got {gallery_size}")
    curves = None
    if light_curves is not None:
        everyone = np.arange(labels.shape[0])
        curves = check_light_curves(
            _fetch_images(light_curves, everyone, labels.shape[0], "light curves"), labels.shape[0]
        )
    elif band_names is not None or epochs_days is not None:
        raise ValueError("band_names and epochs_days describe light curves; pass light_curves too")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_metrics_json(metrics, out / METRICS_FILE)

    two_class = len(names) == 2
    threshold = metrics.get("decision_threshold") if two_class else None
    predicted = two_class_predictions(probs, threshold)
    if two_class:
        roc = (
            plot_lens_roc(labels, probs[:, 1], out / "roc.png", threshold),
            f"ROC curve scoring '{names[1]}' by its probability: linear and log false-positive "
            "rate; the dot is the decision threshold",
        )
    else:
        roc = (
            plot_roc(labels, probs, names, out / "roc.png"),
            "ROC curves, one class against the rest",
        )
    figures = [
        roc,
        (
            plot_confusion(
                confusion_matrix(labels, predicted, len(names)), names, out / "confusion.png"
            ),
            "Confusion matrix: counts and fractions of each true class"
            + (f" (threshold {threshold:.4g})" if threshold is not None else ""),
        ),
    ]
    if two_class:
        caption = f"Precision-recall curve, scoring '{names[1]}' by its probability"
        figures.append((plot_pr(labels, probs[:, 1], out / "pr.png", threshold), caption))
    if history is not None:
        figures.append(
            (plot_training_curves(history, out / "training_curves.png"), "Training history")
        )
    sections = _science_sections(out, metrics, "before")
    sections += [
        ("metrics", "Metrics", _summary_table(metrics)),
        ("per-class", "Per-class scores", _per_class_table(metrics, names)),
    ]
    sections += _science_sections(out, metrics, "after")
    sections.append(("figures", "Figures", "".join(_figure_html(p, c) for p, c in figures)))
    if images is not None:
        look = {"zero_points": zero_points, "pixel_scale_arcsec": pixel_scale_arcsec}
        gallery = _lens_gallery_section if two_class else _gallery_section
        heading = (
            "Hardest cases, ranked by lens score" if two_class else "Most confident predictions"
        )
        body = gallery(out, images, labels, probs, names, ids, gallery_size, look)
        sections.append(("gallery", heading, body))
    if curves is not None:
        sections.append(
            (
                "light-curves",
                "Light curves",
                _light_curve_section(
                    out,
                    curves,
                    labels,
                    probs,
                    predicted,
                    names,
                    ids,
                    band_names,
                    epochs_days,
                    light_curve_label,
                ),
            )
        )
    citations = (metrics.get("evaluation") or {}).get("citations")
    if citations:
        sections.append(("cite", "How to cite", _citations_html(citations)))
    if config is not None:
        sections.append(("config", "Configuration", f"<pre>{_esc(_config_text(config))}</pre>"))

    meta = (
        f"{labels.shape[0]} samples, {len(names)} classes ({', '.join(names)}); "
        f"darklens {__version__}"
    )
    report_path = out / REPORT_FILE
    report_path.write_text(_page(title, meta, sections), encoding="utf-8")
    return report_path


def _gallery_section(
    out: Path,
    images: ImageSource,
    labels: np.ndarray,
    probs: np.ndarray,
    names: list[str],
    ids: list[str],
    gallery_size: int,
    look: Mapping[str, Any],
) -> str:
    parts = []
    for correct, stem, heading in (
        (True, "gallery_correct", "Most confident correct predictions"),
        (False, "gallery_wrong", "Most confident wrong predictions"),
    ):
        chosen = most_confident(labels, probs, correct, gallery_size)
        if chosen.size == 0:
            parts.append(f'<p class="note">{_esc(heading)}: none.</p>')
            continue
        block = _fetch_images(images, chosen, labels.shape[0])
        titles = _gallery_titles(chosen, labels, probs, names, ids)
        path = plot_gallery(block, titles, out / f"{stem}.png", suptitle=heading, **look)
        parts.append(_figure_html(path, heading))
    return "".join(parts)


def _lens_gallery_section(
    out: Path,
    images: ImageSource,
    labels: np.ndarray,
    probs: np.ndarray,
    names: list[str],
    ids: list[str],
    gallery_size: int,
    look: Mapping[str, Any],
) -> str:
    top_non_lenses, bottom_lenses = hardest_lens_cases(labels, probs[:, 1], gallery_size)
    parts = []
    for chosen, stem, heading in (
        (
            top_non_lenses,
            "gallery_top_nonlenses",
            f"Highest-scored {names[0]} (worst false positives)",
        ),
        (bottom_lenses, "gallery_bottom_lenses", f"Lowest-scored {names[1]} (most easily missed)"),
    ):
        if chosen.size == 0:
            parts.append(f'<p class="note">{_esc(heading)}: none.</p>')
            continue
        block = _fetch_images(images, chosen, labels.shape[0])
        titles = [
            f"#{rank} {ids[i]}\n{names[labels[i]]}\nscore = {probs[i, 1]:.4g}"
            for rank, i in enumerate(chosen, start=1)
        ]
        path = plot_gallery(block, titles, out / f"{stem}.png", suptitle=heading, **look)
        parts.append(_figure_html(path, heading))
    return "".join(parts)


def _science_sections(out: Path, metrics: Mapping[str, Any], where: str) -> list[tuple]:
    """The sections of the science entries: warnings before the metrics, the rest after."""
    if where == "before":
        found = metrics.get("warnings") or []
        items = "".join(f"<li>{_esc(w)}</li>" for w in found)
        return [("warnings", "Warnings", f'<ul class="warnings">{items}</ul>')] if found else []
    sections = []
    if "uncertainty" in metrics:
        sections.append(("uncertainty", "Uncertainties", _uncertainty_table(metrics)))
    if metrics.get("vs_truth"):
        path = plot_metrics_vs_truth(metrics["vs_truth"], out / "metrics_vs_truth.png")
        caption = (
            "Metrics against the simulation's truth: per equal-count bin, the AUC of that bin's "
            "members against the first class and, for two classes, the completeness at the "
            "decision threshold (95 % Wilson intervals)"
        )
        table = _truth_table(metrics["vs_truth"])
        sections.append(("vs-truth", "Against the truth", _figure_html(path, caption) + table))
    if "undetectable_lenses" in metrics:
        sections.append(
            ("undetectable", "Lenses below the lens definition", _undetectable_table(metrics))
        )
    return sections


def _uncertainty_table(metrics: Mapping[str, Any]) -> str:
    entry = metrics["uncertainty"]
    rows = []
    for key, pair in entry["intervals"].items():
        if key == "auc_per_class":
            continue
        low, high = pair
        value = metrics.get(key)
        label = METRIC_LABELS.get(key, key)
        if key == "auc":
            name, value = list(metrics["auc_per_class"].items())[-1]
            label = f"AUC, {name} against the rest"
        rows.append(
            f"<tr><td>{_esc(label)}</td><td class='num'>{_fmt(value)}</td>"
            f"<td class='num'>{_fmt(low)} – {_fmt(high)}</td></tr>"
        )
    for name, (low, high) in entry["intervals"]["auc_per_class"].items():
        rows.append(
            f"<tr><td>AUC {_esc(name)}</td><td class='num'>"
            f"{_fmt(metrics['auc_per_class'].get(name))}</td>"
            f"<td class='num'>{_fmt(low)} – {_fmt(high)}</td></tr>"
        )
    level = f"{entry['level'] * 100:g} %"
    note = (
        f'<p class="note">{level} percentile intervals of a stratified bootstrap '
        f"({entry['n_resamples']} resamples of each class at its own size, seed {entry['seed']})."
        "</p>"
    )
    head = (
        f"<tr><th>metric</th><th class='num'>value</th><th class='num'>{level} interval</th></tr>"
    )
    return _table("uncertainty-table", head, rows, note)


def _truth_table(vs_truth: Mapping[str, Any]) -> str:
    rows = []
    for entry in vs_truth.values():
        for r in entry["bins"]:
            complete = r.get("completeness")
            rows.append(
                f"<tr><td>{_esc(entry['label'])}</td><td class='num'>{r['low']:.4g} – "
                f"{r['high']:.4g}</td><td class='num'>{r['n']}</td><td class='num'>"
                f"{_fmt(r['auc'])}</td><td class='num'>{_fmt(complete)}</td></tr>"
            )
    head = (
        "<tr><th>truth</th><th class='num'>bin</th><th class='num'>n</th>"
        "<th class='num'>AUC</th><th class='num'>completeness</th></tr>"
    )
    return _table("truth-table", head, rows)


def _undetectable_table(metrics: Mapping[str, Any]) -> str:
    entry = metrics["undetectable_lenses"]
    rows = [
        ("lens systems below the definition (labelled non-lens)", entry["n"]),
        (f"share scored above the threshold {entry['threshold']:.4g}", entry["share_called_lens"]),
        ("median lens score", entry["score_quantiles"]["p50"]),
    ]
    for key, value in (entry.get("without_them") or {}).items():
        label = "AUC" if key == "auc_per_class" else METRIC_LABELS.get(key, key)
        rows.append((f"{label}, without them", value))
    cells = [f"<tr><td>{_esc(label)}</td><td class='num'>{_fmt(v)}</td></tr>" for label, v in rows]
    return _table("undetectable-table", "", cells)


def _table(table_id: str, head: str, rows: Sequence[str], before: str = "") -> str:
    thead = f"<thead>{head}</thead>" if head else ""
    return f'{before}<table id="{table_id}">{thead}<tbody>{"".join(rows)}</tbody></table>'


def _light_curve_section(
    out: Path,
    curves: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    predicted: np.ndarray,
    names: list[str],
    ids: list[str],
    band_names: Sequence[str] | None,
    epochs_days: Sequence[float] | None,
    flux_label: str = "Flux",
) -> str:
    path = plot_light_curves(
        curves,
        labels,
        names,
        out / "light_curves.png",
        band_names=band_names,
        proba=probs,
        y_pred=predicted,
        epochs_days=epochs_days,
        sample_ids=ids,
        flux_label=flux_label,
    )
    caption = (
        "Light curves of each true class: per band, the thick line is the class median flux at "
        "each epoch and the shaded band holds the middle 68 % of the class (16th to 84th "
        "percentile; missing fluxes ignored); thin lines are a few members. The lower row shows "
        "the class's most confidently misclassified members, one line style each, over the faint "
        "class median."
    )
    return _figure_html(path, caption)


def evaluate_predictions(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    out_dir: str | Path,
    *,
    threshold: float | None = None,
    lens_rate: float = DEFAULT_LENS_RATE,
    truth: Mapping[str, np.ndarray] | None = None,
    truth_specs: Sequence[TruthSpec] = (),
    undetectable: np.ndarray | None = None,
    **report_options: Any,
) -> dict[str, Any]:
    """Compute :func:`classification_metrics` and the science entries
    (:func:`~darklens.evaluate.science.add_science_metrics`: bootstrap intervals, warnings and,
    given ``truth`` columns and ``truth_specs``, metrics against them; ``undetectable`` marks
    non-lenses that are lenses below the lens definition), write the full report to
    ``out_dir``, return the metrics.

    ``threshold`` and ``lens_rate`` go to :func:`classification_metrics` (two classes);
    ``report_options`` are the keyword options of :func:`write_report` (images, image_ids,
    history, config, title, gallery_size, light_curves, band_names, epochs_days).
    """
    metrics = classification_metrics(
        y_true, proba, class_names, threshold=threshold, lens_rate=lens_rate
    )
    add_science_metrics(
        metrics,
        y_true,
        proba,
        class_names,
        threshold=threshold,
        truth=truth,
        truth_specs=truth_specs,
        undetectable=undetectable,
    )
    write_report(out_dir, metrics, class_names, y_true=y_true, proba=proba, **report_options)
    return metrics
