"""Evaluate regression and denoising checkpoints on a split of a dataset file.

:func:`evaluate_regression` writes ``metrics.json`` (per target MAE, RMSE, R², bias and, for
Gaussian-NLL heads, the 68 %/95 % coverage of the predicted σ: :mod:`darklens.evaluate.regression`),
``predictions.csv`` (``id``, then per target ``true_<t>``, ``<t>``, ``<t>_sigma``), the
predicted-vs-true figure, the residuals against the dataset's other scalar truth columns, and
``report.html``. Images whose target is NaN are left out and counted (``n_masked``).

:func:`evaluate_denoiser` compares the denoised images with ``/targets/clean``: PSNR and SSIM
(scikit-image's) of the denoised and of the noisy images, and the residual standard deviation
(denoised − clean) against the noise's (noisy − clean).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens._atomic import atomic_folder
from darklens.data.description import check_input, describe_dataset
from darklens.data.h5 import LensDataset
from darklens.evaluate.plots import plot_training_curves
from darklens.evaluate.regression import psnr, regression_metrics, ssim
from darklens.evaluate.report import (
    METRICS_FILE,
    REPORT_FILE,
    _config_text,
    _esc,
    _figure_html,
    _fmt,
    _page,
    write_metrics_json,
)
from darklens.evaluate.task_plots import (
    plot_denoising_examples,
    plot_predicted_vs_true,
    plot_residuals_vs_truth,
)
from darklens.predict.ensemble import resolve_inference_device
from darklens.predict.tasks import Denoiser, Regressor
from darklens.progress import Progress, stage_counter
from darklens.runs import HISTORY_FILE
from darklens.train.targets import target_table

PREDICTIONS_FILE = "predictions.csv"
MAX_RESIDUAL_COLUMNS = 8
EXAMPLES = 4


def _split_rows(dataset: LensDataset, split: str) -> np.ndarray:
    rows = dataset.split_indices(split)
    if rows.size == 0:
        raise ValueError(f"{dataset.path} has no images in split {split!r}")
    return rows


def _in_blocks(
    rows: np.ndarray, size: int, predict: Callable[[np.ndarray], Any], on_block: Any
) -> list[Any]:
    out = []
    for start in range(0, rows.size, size):
        block = rows[start : start + size]
        out.append(predict(block))
        if on_block is not None:
            on_block(block.size)
    return out


def evaluate_regression(
    regressor: Regressor,
    json_path: Path,
    dataset: LensDataset,
    out_dir: str | Path,
    *,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Regression metrics and report of ``regressor`` on ``split`` of ``dataset``."""
    names = regressor.target_names_
    rows = _split_rows(dataset, split)
    try:
        true = target_table(dataset, names)[rows]
    except KeyError as err:
        raise ValueError(f"{dataset.path}: {err.args[0]}") from None
    keep = np.isfinite(true).all(axis=1)
    if keep.sum() < 2:
        raise ValueError(
            f"{int(keep.sum())} of the {rows.size} {split!r} images of {dataset.path} have a "
            f"value of every target ({', '.join(names)}); nothing to evaluate"
        )
    rows, true = rows[keep], true[keep]
    extras = regressor.inputs_[1:]

    def predict(block: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        more = {n: dataset.inputs(n, block) for n in extras} or None
        return regressor.predict(dataset.images(block), tta=tta, extras=more)

    counter = stage_counter(progress, f"evaluating {split}", int(rows.size))
    parts = _in_blocks(rows, batch_size, predict, counter)
    pred = np.concatenate([p for p, _ in parts])
    sigma = None if parts[0][1] is None else np.concatenate([s for _, s in parts])
    metrics = regression_metrics(true, pred, sigma, names)
    metrics["n_masked"] = int((~keep).sum())
    metrics["evaluation"] = _evaluation_entry(json_path, dataset, split, tta, rows.size)
    others = _other_truth(dataset, rows, names)
    with atomic_folder(out_dir, replace=_is_report_folder) as out:
        write_metrics_json(metrics, out / METRICS_FILE)
        figures = [
            (
                plot_predicted_vs_true(true, pred, sigma, names, out / "predicted_vs_true.png"),
                "Predicted against true value"
                + (" (bars: ±1σ predicted)" if sigma is not None else ""),
            ),
            (
                plot_residuals_vs_truth(pred - true, names, others, out / "residuals.png"),
                "Residuals (predicted − true) against the other truth columns",
            ),
        ]
        _write_regression_table(out / PREDICTIONS_FILE, rows, names, true, pred, sigma)
        table = _regression_table_html(metrics)
        _write_page(out, json_path, regressor, dataset, split, metrics, table, figures)
    return metrics


def _other_truth(dataset: LensDataset, rows: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Scalar truth columns with finite values on ``rows``, other than those the targets are made
    of (up to :data:`MAX_RESIDUAL_COLUMNS`)."""
    others = {}
    for column in dataset.truth_columns:
        stem = column.rsplit("_", 1)[0]  # without its unit: axion_mass_ev → axion_mass
        if any(column in name or stem in name for name in names):
            continue
        values = np.asarray(dataset.truth(column))[rows]
        if values.ndim != 1 or values.dtype.kind not in "iuf":
            continue
        values = values.astype(np.float64)
        if np.all(np.isfinite(values)) and np.ptp(values) > 0:
            others[column] = values
        if len(others) == MAX_RESIDUAL_COLUMNS:
            break
    return others


def _write_regression_table(
    path: Path,
    rows: np.ndarray,
    names: list[str],
    true: np.ndarray,
    pred: np.ndarray,
    sigma: np.ndarray | None,
) -> None:
    header = ["id"]
    for name in names:
        header += [f"true_{name}", name] + ([f"{name}_sigma"] if sigma is not None else [])
    lines = [",".join(header)]
    for i, row in enumerate(rows):
        cells = [str(int(row))]
        for k in range(len(names)):
            cells += [repr(float(true[i, k])), repr(float(pred[i, k]))]
            if sigma is not None:
                cells.append(repr(float(sigma[i, k])))
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _regression_table_html(metrics: dict[str, Any]) -> str:
    targets = metrics["targets"]
    keys = list(next(iter(targets.values())))
    head = "".join(f'<th class="num">{_esc(k)}</th>' for k in keys)
    body = "".join(
        f'<tr><th scope="row">{_esc(name)}</th>'
        + "".join(f'<td class="num">{_esc(_fmt(values[k]))}</td>' for k in keys)
        + "</tr>"
        for name, values in targets.items()
    )
    counts = (
        f"<p>{metrics['n_samples']} images evaluated; {metrics['n_masked']} left out (NaN "
        "target).</p>"
    )
    return (
        f'{counts}<table id="metrics-table"><thead><tr><th>Target</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def evaluate_denoiser(
    denoiser: Denoiser,
    json_path: Path,
    dataset: LensDataset,
    out_dir: str | Path,
    *,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Denoising metrics and report of ``denoiser`` on ``split`` of ``dataset`` (which must
    hold ``/targets/clean``)."""
    rows = _split_rows(dataset, split)
    if "clean" not in dataset.target_names:
        raise ValueError(
            f"{dataset.path} holds no noiseless images (/targets/clean) to compare with; "
            "simulate it with --set store_clean=true"
        )
    sums = np.zeros(6)
    examples: list[np.ndarray] = []

    def score(block: np.ndarray) -> None:
        noisy, clean = dataset.images(block), dataset.clean_images(block)
        denoised = denoiser.denoise(noisy, tta=tta)
        for n, d, c in zip(noisy, denoised, clean, strict=True):
            span = float(c.max() - c.min()) or 1.0
            sums[:4] += [psnr(c, d, span), psnr(c, n, span), ssim(c, d, span), ssim(c, n, span)]
        sums[4] += float(np.sum((denoised - clean) ** 2))
        sums[5] += float(np.sum((noisy - clean) ** 2))
        if not examples:
            examples.extend(a[:EXAMPLES] for a in (noisy, denoised, clean))

    _in_blocks(rows, batch_size, score, stage_counter(progress, f"evaluating {split}", rows.size))
    n_pixels = rows.size * int(np.prod(dataset.image_shape))
    metrics: dict[str, Any] = {
        "n_samples": int(rows.size),
        "psnr_db": float(sums[0] / rows.size),
        "psnr_noisy_db": float(sums[1] / rows.size),
        "ssim": float(sums[2] / rows.size),
        "ssim_noisy": float(sums[3] / rows.size),
        "residual_std": float(np.sqrt(sums[4] / n_pixels)),
        "noise_std": float(np.sqrt(sums[5] / n_pixels)),
    }
    metrics["residual_to_noise"] = metrics["residual_std"] / max(metrics["noise_std"], 1e-30)
    metrics["evaluation"] = _evaluation_entry(json_path, dataset, split, tta, rows.size)
    with atomic_folder(out_dir, replace=_is_report_folder) as out:
        write_metrics_json(metrics, out / METRICS_FILE)
        figures = [
            (
                plot_denoising_examples(*examples, out / "denoising_examples.png"),
                "Noisy, denoised and clean images (first channel) and the residual",
            )
        ]
        rows_html = "".join(
            f'<tr><th scope="row">{_esc(k)}</th><td class="num">{_esc(_fmt(v))}</td></tr>'
            for k, v in metrics.items()
            if k != "evaluation"
        )
        table = f'<table id="metrics-table"><tbody>{rows_html}</tbody></table>'
        _write_page(out, json_path, denoiser, dataset, split, metrics, table, figures)
    return metrics


def _evaluation_entry(
    json_path: Path, dataset: LensDataset, split: str, tta: bool, n_images: int
) -> dict[str, Any]:
    return {
        "checkpoints": [str(json_path)],
        "dataset": str(Path(dataset.path).resolve()),
        "split": split,
        "tta": tta,
        "n_images": int(n_images),
        "darklens_version": __version__,
    }


def _write_page(
    out: Path,
    json_path: Path,
    predictor: Regressor | Denoiser,
    dataset: LensDataset,
    split: str,
    metrics: dict[str, Any],
    table: str,
    figures: list[tuple[Path, str]],
) -> None:
    history = json_path.parent / HISTORY_FILE
    if history.is_file():
        figures.append(
            (plot_training_curves(history, out / "training_curves.png"), "Training history")
        )
    config = {
        "evaluation": metrics["evaluation"],
        "training": predictor.checkpoint_.get("train_config"),
    }
    sections = [
        ("metrics", "Metrics", table),
        ("figures", "Figures", "".join(_figure_html(p, c) for p, c in figures)),
        ("config", "Configuration", f"<pre>{_esc(_config_text(config))}</pre>"),
    ]
    where = f"{json_path.parent.name}/{json_path.stem} on {Path(dataset.path).name} ({split})"
    title = f"darklens {predictor.task} evaluation: {where}"
    meta = f"{metrics['n_samples']} images; darklens {__version__}"
    (out / REPORT_FILE).write_text(_page(title, meta, sections), encoding="utf-8")


def _is_report_folder(path: Path) -> bool:
    return not any(path.iterdir()) or (path / METRICS_FILE).is_file()


def evaluate_task(
    task: str,
    json_paths: list[Path],
    data: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    tta: bool = False,
    batch_size: int = 256,
    device: str = "cpu",
    progress: Progress | None = None,
    allow_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate one regression or denoising checkpoint (``task``) on ``split`` of ``data``,
    after the input checks every evaluation makes (channels, bands, pixel scale, units)."""
    if len(json_paths) != 1:
        raise ValueError(f"{task} checkpoints are evaluated one at a time, got {len(json_paths)}")
    json_path = json_paths[0]
    reader = Regressor if task == "regress" else Denoiser
    model = reader.from_checkpoint(
        json_path, device=resolve_inference_device(device), batch_size=batch_size
    )
    with LensDataset(data) as dataset:
        if dataset.image_shape[0] != model.in_chans_:
            raise ValueError(
                f"{dataset.path} has {dataset.image_shape[0]}-channel images but {json_path} "
                f"takes {model.in_chans_}"
            )
        given = describe_dataset(dataset.manifest, dataset.image_shape)
        check_input(
            model.input_description_, given, str(dataset.path), str(json_path), allow_mismatch
        )
        run = evaluate_regression if isinstance(model, Regressor) else evaluate_denoiser
        return run(
            model,  # type: ignore[arg-type]
            json_path,
            dataset,
            out_dir,
            split=split,
            tta=tta,
            batch_size=batch_size,
            progress=progress,
        )
