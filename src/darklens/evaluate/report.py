"""The standard evaluation report: ``metrics.json``, PNG figures and one self-contained HTML page.

``report.html`` embeds every figure as a base64 ``data:`` URI and carries its CSS inline; it loads
nothing from anywhere and runs no scripts, so it can be mailed, archived or opened offline. Every
string put into it is HTML-escaped.
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
    check_class_names,
    check_multiclass,
    classification_metrics,
    confusion_matrix,
)
from darklens.evaluate.plots import (
    plot_confusion,
    plot_gallery,
    plot_pr,
    plot_roc,
    plot_training_curves,
)

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
    "tpr0": "TPR at 0 false positives (TPR0)",
    "tpr1": "TPR at ≤1 false positive (TPR1)",
    "tpr10": "TPR at ≤10 false positives (TPR10)",
    "pr_auc": "Average precision (PR AUC)",
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


def _fetch_images(images: Any, indices: np.ndarray, n_samples: int) -> np.ndarray:
    """Images at ``indices`` from an array-like ``[N, ...]`` or a reader ``f(indices)``."""
    if callable(images):
        block = np.asarray(images(indices))
    else:
        if len(images) != n_samples:
            raise ValueError(f"got {len(images)} images for {n_samples} predictions")
        order = np.argsort(indices)
        sorted_block = np.asarray(images[indices[order]])
        block = np.empty_like(sorted_block)
        block[order] = sorted_block
    if block.shape[0] != indices.size:
        raise ValueError(f"the image reader returned {block.shape[0]} images for {indices.size}")
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
) -> Path:
    """Write ``metrics.json``, PNG figures and a self-contained ``report.html``; return its path.

    ``metrics`` come from :func:`classification_metrics` on the same ``y_true``/``proba``.
    ``images`` (``[N, C, H, W]``, aligned with ``y_true``, or a reader such as
    ``LensDataset.images`` called with index arrays) adds galleries of the most confident right
    and wrong predictions, labelled with ``image_ids``. ``history`` (CSV path, column mapping or
    DataFrame) adds training curves; ``config`` (a Config, mapping, file path or text) is shown
    verbatim.
    """
    labels, probs = check_multiclass(y_true, proba)
    names = check_class_names(class_names, probs.shape[1])
    _check_metrics(metrics, names, labels.shape[0])
    ids = _check_image_ids(image_ids, labels.shape[0])
    if gallery_size < 1:
        raise ValueError(f"gallery_size must be at least 1, got {gallery_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_metrics_json(metrics, out / "metrics.json")

    predicted = np.argmax(probs, axis=1)
    figures = [
        (plot_roc(labels, probs, names, out / "roc.png"), "ROC curves, one class against the rest"),
        (
            plot_confusion(
                confusion_matrix(labels, predicted, len(names)), names, out / "confusion.png"
            ),
            "Confusion matrix: counts and fractions of each true class",
        ),
    ]
    if len(names) == 2:
        caption = f"Precision-recall curve, scoring '{names[1]}' by its probability"
        figures.append((plot_pr(labels, probs[:, 1], out / "pr.png"), caption))
    if history is not None:
        figures.append(
            (plot_training_curves(history, out / "training_curves.png"), "Training history")
        )
    sections = [
        ("metrics", "Metrics", _summary_table(metrics)),
        ("per-class", "Per-class scores", _per_class_table(metrics, names)),
        ("figures", "Figures", "".join(_figure_html(p, c) for p, c in figures)),
    ]
    if images is not None:
        sections.append(
            (
                "gallery",
                "Most confident predictions",
                _gallery_section(out, images, labels, probs, names, ids, gallery_size),
            )
        )
    if config is not None:
        sections.append(("config", "Configuration", f"<pre>{_esc(_config_text(config))}</pre>"))

    meta = (
        f"{labels.shape[0]} samples, {len(names)} classes ({', '.join(names)}); "
        f"darklens {__version__}"
    )
    report_path = out / "report.html"
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
        path = plot_gallery(block, titles, out / f"{stem}.png", suptitle=heading)
        parts.append(_figure_html(path, heading))
    return "".join(parts)


def evaluate_predictions(
    y_true: Any,
    proba: Any,
    class_names: Sequence[str],
    out_dir: str | Path,
    **report_options: Any,
) -> dict[str, Any]:
    """Compute :func:`classification_metrics`, write the full report to ``out_dir``, return them.

    ``report_options`` are the keyword options of :func:`write_report` (images, image_ids,
    history, config, title, gallery_size).
    """
    metrics = classification_metrics(y_true, proba, class_names)
    write_report(out_dir, metrics, class_names, y_true=y_true, proba=proba, **report_options)
    return metrics
