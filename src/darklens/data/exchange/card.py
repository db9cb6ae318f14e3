"""The dataset card (``README.md``) of an exported dataset, as the Hugging Face Hub reads it: a YAML
header (licence, task, the Parquet files of each split, the column types with the class names)
and a body with the classes, splits, columns, how to load it, the manifest and what to cite."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import yaml

from darklens.citations import report_citations
from darklens.data.h5 import SPLIT_NAMES

# the Hub's name for each darklens split
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
SIMULATED_LICENSE = "cc-by-4.0"


def default_license(manifest: Mapping[str, Any]) -> str:
    """``cc-by-4.0`` for datasets darklens simulated (a suggestion: edit the card), ``unknown``
    for imported ones (the source data's licence applies)."""
    return SIMULATED_LICENSE if manifest.get("preset") else "unknown"


def hub_features(
    image_shape: Sequence[int],
    class_names: Sequence[str],
    truth: Sequence[tuple[str, tuple[int, ...], str]],
    inputs: Sequence[tuple[str, tuple[int, ...]]],
) -> list[dict[str, Any]]:
    """The card's ``dataset_info.features``: the Parquet columns in the Hub's YAML form."""
    features: list[dict[str, Any]] = [
        {"name": "index", "dtype": "int64"},
        {"name": "image", **_fixed_list(image_shape, "float32")},
        {"name": "label", "dtype": {"class_label": {"names": _names(class_names)}}},
        {"name": "split", "dtype": "string"},
    ]
    features += [{"name": f"truth_{n}", **_fixed_list(s, d)} for n, s, d in truth]
    features += [{"name": f"input_{n}", **_fixed_list(s, "float32")} for n, s in inputs]
    return features


def _names(class_names: Sequence[str]) -> dict[str, str]:
    return {str(k): name for k, name in enumerate(class_names)}


def _fixed_list(shape: Sequence[int], dtype: str) -> dict[str, Any]:
    """``{"dtype": dtype}`` for scalars, nested fixed-length ``list`` entries for arrays."""
    if not shape:
        return {"dtype": dtype}
    inner = _fixed_list(shape[1:], dtype)
    return {"list": inner.get("dtype", inner), "length": int(shape[0])}


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")]
    bounds += [(1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    return next((label for bound, label in bounds if n < bound), "10M<n<100M")


def dataset_card(
    *,
    layout: str,
    title: str,
    image_shape: Sequence[int],
    class_names: Sequence[str],
    labels: np.ndarray,
    split_codes: np.ndarray,
    manifest: Mapping[str, Any],
    truth: Sequence[tuple[str, tuple[int, ...], str]],
    inputs: Sequence[tuple[str, tuple[int, ...]]],
    license: str,
    data_files: Mapping[str, str] | None = None,
) -> str:
    """The README.md text; ``data_files`` maps split names to file patterns (Parquet)."""
    header: dict[str, Any] = {
        "license": license,
        "task_categories": ["image-classification"],
        "tags": ["astronomy", "strong-gravitational-lensing", "darklens"],
        "size_categories": [_size_category(len(labels))],
        "pretty_name": title,
    }
    if data_files:
        files = [{"split": HUB_SPLITS[s], "path": p} for s, p in data_files.items()]
        header["configs"] = [{"config_name": "default", "data_files": files}]
        header["dataset_info"] = {"features": hub_features(image_shape, class_names, truth, inputs)}
    parts = [
        "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---",
        f"# {title}",
        _summary(layout, image_shape, manifest, len(labels)),
        "## Classes and splits\n\n" + _counts_table(class_names, labels, split_codes),
        "## Columns\n\n" + _columns(layout, truth, inputs),
        "## Loading\n\n" + _loading(layout, data_files),
        "## Licence\n\n" + _licence_text(license),
        "## Citation\n\n" + _citations(manifest),
        "## Manifest\n\nHow the data were made, as darklens recorded it:\n\n```json\n"
        + json.dumps(dict(manifest), indent=1, default=str)
        + "\n```",
    ]
    return "\n\n".join(parts) + "\n"


def _summary(layout: str, image_shape: Sequence[int], manifest: Mapping[str, Any], n: int) -> str:
    shape = " x ".join(map(str, image_shape))
    lines = [f"{n} images of {shape} (bands x height x width, float32), written by darklens."]
    made = manifest.get("preset") or manifest.get("source")
    if made:
        lines.append(f"Made by: {made} (seed {manifest.get('seed', 'n/a')}).")
    for key, label in (
        ("pixel_scale_arcsec", "Pixel scale (arcsec)"),
        ("band_names", "Bands"),
        ("image_units", "Image units"),
    ):
        if key in manifest:
            value = manifest[key]
            lines.append(f"{label}: {', '.join(value) if isinstance(value, list) else value}.")
    return " ".join(lines)


def _counts_table(class_names: Sequence[str], labels: np.ndarray, split_codes: np.ndarray) -> str:
    rows = ["| label | class | " + " | ".join(SPLIT_NAMES) + " |"]
    rows.append("|---" * (len(SPLIT_NAMES) + 2) + "|")
    for k, name in enumerate(class_names):
        counts = [int(np.sum((labels == k) & (split_codes == c))) for c in range(len(SPLIT_NAMES))]
        rows.append(f"| {k} | {name} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(rows)


def _columns(
    layout: str,
    truth: Sequence[tuple[str, tuple[int, ...], str]],
    inputs: Sequence[tuple[str, tuple[int, ...]]],
) -> str:
    if layout == "fits":
        return (
            "`images/{split}/{class}/{index}.fits`: one image per file (2-D for one band, else "
            "a cube [bands, height, width]); headers carry PIXSCALE (arcsec/pixel), the band names "
            "(FILTER, or BAND1..BANDn), CLASS, LABEL, SPLIT and DLINDEX (the image's index). "
            "`catalog.fits`: one row per image (INDEX, FILE, LABEL, SPLIT) with the truth "
            "columns and extra inputs."
        )
    lines = [
        "- `index` (int64): the image's position in the darklens dataset file",
        "- `image` (float32 [bands][height][width]): the pixels, unchanged",
        "- `label` (int64): the class (names above)",
        "- `split` (string): train, val or test",
    ]
    lines += [f"- `truth_{n}` ({d}{list(s) if s else ''}): truth" for n, s, d in truth]
    lines += [f"- `input_{n}` (float32{list(s)}): extra model input" for n, s in inputs]
    return "\n".join(lines)


def _loading(layout: str, data_files: Mapping[str, str] | None) -> str:
    back = "Back to a darklens dataset file (the same bytes as the exported one):\n\n"
    back += "```bash\ndarklens import THIS_FOLDER --out dataset.h5\n```"
    if layout == "fits":
        return back
    files = ", ".join(f'"{HUB_SPLITS[s]}": "{p}"' for s, p in (data_files or {}).items())
    return (
        "With Hugging Face `datasets` (from this folder):\n\n```python\nfrom datasets import "
        f'load_dataset\n\nds = load_dataset("parquet", data_files={{{files}}})\n```\n\n' + back
    )


def _licence_text(license: str) -> str:
    if license == "unknown":
        return (
            "Unknown: this dataset was imported into darklens, and the licence of its source "
            "data applies. Set `license` in the header above once you know it."
        )
    return (
        f"`{license}` (set when the dataset was exported; change `license` in the header above "
        "if you publish it under other terms). darklens itself is MIT-licensed."
    )


def _citations(manifest: Mapping[str, Any]) -> str:
    lines = []
    for entry in report_citations(manifest, []):
        where = [f"doi:{entry['doi']}" if "doi" in entry else ""]
        where += [f"arXiv:{entry['arxiv']}" if "arxiv" in entry else "", entry.get("url", "")]
        link = "; ".join(w for w in where if w)
        lines.append(f"- {entry['reference']}{f' ({link})' if link else ''}: {entry['why']}")
    return "If you use this dataset, please cite:\n\n" + "\n".join(lines)
