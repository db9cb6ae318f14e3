"""Import the DeepLense lens-finding folders (two classes: non-lens, lens) into one dataset file.

Layout under the folder given to :func:`import_lensfind_folders` (``ROOT``; folder names are
matched case-insensitively, names starting with ``.`` are ignored)::

    ROOT/train_lenses/*.npy       lenses for training  -> train / val (seeded, stratified)
    ROOT/train_nonlenses/*.npy    non-lenses for training
    ROOT/test_lenses/*.npy        optional: lenses held out -> test
    ROOT/test_nonlenses/*.npy     optional: non-lenses held out -> test

Each file is one numeric image, ``(3, 64, 64)`` in the DeepLense lens-finding test (any
``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` array is accepted under the rules of
:func:`darklens.data.deeplense.to_chw`); all images of one dataset must share one shape. Files
are read with :func:`darklens.data.safe_pickle.load_npy_safely`, so a pickled payload can never
run code; object arrays are refused, since lens-finding images are plain numeric arrays.

The output holds the classes :data:`CLASS_NAMES` in that order (label 1 = lens, the positive
class of the lens-finding metrics). The folders are strongly imbalanced (about one lens per
several non-lenses): train with ``class_weighting="balanced"`` (``w_c = N / (2 N_c)``),
``balanced_sampling`` or ``loss="focal"``.

The helpers :func:`stratified_split`, :func:`screen_images` and :func:`write_images` are shared
with the Bologna challenge importer (:mod:`darklens.data.bologna`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens.data.deeplense import (
    BadInputFile,
    ImportReport,
    LayoutError,
    SkippedFile,
    to_chw,
)
from darklens.data.h5 import SPLIT_NAMES, DatasetWriter
from darklens.data.safe_pickle import NpyReadError, load_npy_safely
from darklens.progress import Progress, stage_counter

CLASS_NAMES: tuple[str, ...] = ("non_lens", "lens")
FOLDERS: dict[str, tuple[str, int]] = {
    "train_nonlenses": ("train", 0),
    "train_lenses": ("train", 1),
    "test_nonlenses": ("test", 0),
    "test_lenses": ("test", 1),
}
REQUIRED_FOLDERS = ("train_nonlenses", "train_lenses")
SOURCE_COLUMN = "source_index"
WRITE_BLOCK = 256

Truth = dict[str, float]


@dataclass(frozen=True)
class ImageSource:
    """One image to import: ``key`` names it in reports, ``read()`` returns the float32 image
    ``[C, H, W]`` and its per-image truth values (raising :class:`BadInputFile` when bad)."""

    key: str
    label: int
    read: Callable[[], tuple[np.ndarray, Truth]]


# -- shared helpers ------------------------------------------------------------------------------
def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """(train, val, test) fractions: three non-negative numbers summing to 1, or ValueError."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not math.isfinite(f) or f < 0 for f in values):
        raise ValueError(
            f"split fractions must be three non-negative numbers (train, val, test), got "
            f"{tuple(fractions)}"
        )
    if not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(f"split fractions {values} must sum to 1 (they sum to {sum(values):g})")
    return values  # type: ignore[return-value]


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split codes (indices into ``SPLIT_NAMES``) that split every class in the same proportions.

    Per class of ``N_c`` images, ``round(f_val N_c)`` go to val and ``round(f_test N_c)`` to test
    (halves rounded up), the rest to train; which ones is a seeded permutation that depends only
    on ``(seed, class)``, so the same input gives the same split.
    """
    _, f_val, f_test = check_fractions(fractions)
    labels = np.asarray(labels)
    codes = np.full(labels.shape, SPLIT_NAMES.index("train"), dtype=np.uint8)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        shuffled = np.random.default_rng([seed, int(label)]).permutation(members)
        n_val = min(math.floor(f_val * members.size + 0.5), members.size)
        n_test = min(math.floor(f_test * members.size + 0.5), members.size - n_val)
        codes[shuffled[:n_val]] = SPLIT_NAMES.index("val")
        codes[shuffled[n_val : n_val + n_test]] = SPLIT_NAMES.index("test")
    return codes


def screen_images(
    sources: Sequence[ImageSource], skip_bad: bool, progress: Progress | None = None
) -> tuple[list[ImageSource], list[SkippedFile], tuple[int, ...]]:
    """The sources to write, those skipped, and the common image shape ``(C, H, W)``.

    Without ``skip_bad`` only the first image is read here (a bad image later stops the write,
    naming its file); with it every image is read once, bad ones are skipped, and so are images
    whose shape differs from the most common one.
    """
    if not sources:
        raise ValueError("no images to import")
    if not skip_bad:
        return list(sources), [], sources[0].read()[0].shape
    advance = stage_counter(progress, "checking images", len(sources))
    good: list[tuple[ImageSource, tuple[int, ...]]] = []
    skipped: list[SkippedFile] = []
    for source in sources:
        try:
            good.append((source, source.read()[0].shape))
        except BadInputFile as err:
            skipped.append(SkippedFile(source.key, _reason(err, source.key)))
        advance(1)
    if not good:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise ValueError(f"no valid images: all {len(sources)} were skipped ({reasons} ...)")
    shape = Counter(s for _, s in good).most_common(1)[0][0]
    kept = []
    for source, image_shape in good:
        if image_shape == shape:
            kept.append(source)
        else:
            reason = f"image shape {image_shape} differs from the most common {shape}"
            skipped.append(SkippedFile(source.key, reason))
    return kept, skipped, shape


def _reason(err: BadInputFile, key: str) -> str:
    """The reason, prefixed with the file name unless ``key`` already names that file."""
    return err.reason if err.path.name in key else f"{err.path.name}: {err.reason}"


def write_images(
    out: Path,
    sources: Sequence[ImageSource],
    shape: tuple[int, ...],
    split_codes: np.ndarray,
    *,
    class_names: Sequence[str],
    manifest: Mapping[str, Any],
    truth_columns: Mapping[str, tuple[tuple[int, ...], str]],
    extra_truth: Mapping[str, np.ndarray],
    overwrite: bool,
    progress: Progress | None = None,
) -> None:
    """Write ``sources`` in blocks of :data:`WRITE_BLOCK` (memory stays bounded by one block).

    Truth columns come from each ``read()`` and from ``extra_truth`` (arrays aligned with
    ``sources``). An image of another shape, or a bad one, aborts the write: no file is left.
    """
    advance = stage_counter(progress, "writing dataset", len(sources))
    labels = np.array([s.label for s in sources], dtype=np.int64)
    with DatasetWriter(
        out,
        n=len(sources),
        image_shape=shape,
        class_names=class_names,
        manifest=manifest,
        truth_columns=truth_columns,
        overwrite=overwrite,
    ) as writer:
        for start in range(0, len(sources), WRITE_BLOCK):
            block = sources[start : start + WRITE_BLOCK]
            images, truths = [], []
            for source in block:
                image, truth = source.read()
                if image.shape != tuple(shape):
                    raise BadInputFile(
                        source.key,
                        f"image shape {image.shape} (C, H, W) differs from {tuple(shape)} of "
                        f"{sources[0].key}: all images of one dataset must share one shape "
                        "(skip_bad / --skip-bad leaves such images out)",
                    )
                images.append(image)
                truths.append(truth)
            stop = start + len(block)
            truth_block = {name: values[start:stop] for name, values in extra_truth.items()}
            for name in truths[0]:
                truth_block[name] = np.array([t[name] for t in truths])
            writer.write(
                start, np.stack(images), labels[start:stop], split_codes[start:stop], truth_block
            )
            advance(len(block))


def split_counts(
    labels: np.ndarray, split_codes: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """``{split: {class: n}}`` for the splits that hold any image."""
    return {
        split: {
            name: int(np.sum((split_codes == code) & (labels == k)))
            for k, name in enumerate(class_names)
        }
        for code, split in enumerate(SPLIT_NAMES)
        if np.any(split_codes == code)
    }


# -- the DeepLense lens-finding layout -----------------------------------------------------------
def read_lensfind_file(path: str | Path) -> np.ndarray:
    """One ``.npy`` lens-finding image as float32 ``[C, H, W]``; BadInputFile names the file."""
    path = Path(path)
    if path.is_dir():
        raise BadInputFile(path, "is a folder; lens-finding folders must hold .npy files only")
    if path.suffix.lower() != ".npy":
        raise BadInputFile(path, "not a .npy file; lens-finding folders must hold .npy files only")
    try:
        array = load_npy_safely(path)
    except NpyReadError as err:
        raise BadInputFile(path, err.reason) from None
    if array.dtype.hasobject:
        raise BadInputFile(
            path, "holds a pickled object array; lens-finding images must be numeric arrays"
        )
    return to_chw(array, path)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def discover_lensfind_folders(root: str | Path) -> list[tuple[Path, str, int]]:
    """Every candidate image as ``(path, split, label)``, sorted by (split, label, file name)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no folder at {root}")
    if not root.is_dir():
        raise LayoutError(f"{root} is a file; point at the folder holding train_lenses etc.")
    expected = ", ".join(FOLDERS)
    found: dict[str, Path] = {}
    for entry in _visible(root):
        name = entry.name.lower()
        if name not in FOLDERS or not entry.is_dir():
            raise LayoutError(
                f"unexpected {'folder' if entry.is_dir() else 'file'} {entry} in the "
                f"lens-finding layout: expected only the folders {expected}"
            )
        if name in found:
            raise LayoutError(f"{found[name]} and {entry} are the same folder: merge them")
        found[name] = entry
    missing = [name for name in REQUIRED_FOLDERS if name not in found]
    if missing:
        raise LayoutError(
            f"{root} lacks the folder(s) {', '.join(missing)}: the lens-finding layout needs "
            f"train_lenses and train_nonlenses (test_lenses and test_nonlenses are optional)"
        )
    files = []
    for name, folder in found.items():
        split, label = FOLDERS[name]
        entries = _visible(folder)
        if not entries and name in REQUIRED_FOLDERS:
            raise LayoutError(f"{folder} is empty: training needs lenses and non-lenses")
        files += [(path, split, label) for path in entries]
    files.sort(key=lambda f: (SPLIT_NAMES.index(f[1]), f[2], f[0].name))
    return files


def _source(path: Path, root: Path, label: int) -> ImageSource:
    return ImageSource(
        key=path.relative_to(root).as_posix(),
        label=label,
        read=lambda: (read_lensfind_file(path), {}),
    )


def import_lensfind_folders(
    root: str | Path,
    out: str | Path,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Convert the DeepLense lens-finding folders into one darklens dataset file (``progress``:
    see :mod:`darklens.progress`).

    ``train_*`` images are split into train and val by :func:`stratified_split` (``val_fraction``
    of each class, chosen by ``seed``); ``test_*`` images form the test split. Truth column
    ``source_index``: position in ``manifest["source_files"]`` (paths relative to ``root``).
    Bad files raise :class:`BadInputFile` naming the file, or with ``skip_bad`` are left out and
    listed in the report and manifest.
    """
    root, out = Path(root), Path(out)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    candidates = discover_lensfind_folders(root)
    sources = [_source(path, root, label) for path, _, label in candidates]
    is_test = {s.key: split == "test" for s, (_, split, _) in zip(sources, candidates, strict=True)}
    kept, skipped, shape = screen_images(sources, skip_bad, progress)
    labels = np.array([s.label for s in kept], dtype=np.int64)
    test = np.array([is_test[s.key] for s in kept], dtype=bool)
    codes = np.full(len(kept), SPLIT_NAMES.index("test"), dtype=np.uint8)
    codes[~test] = stratified_split(labels[~test], (1 - val_fraction, val_fraction, 0), seed)
    manifest = {
        "source": "lensfind-folders-import",
        "root": str(root.resolve()),
        "layout": "deeplense-lensfinding",
        "val_fraction": val_fraction,
        "seed": seed,
        "files": len(kept),
        "skipped": [{"file": s.path, "reason": s.reason} for s in skipped],
        "source_files": [s.key for s in kept],
        "darklens_version": __version__,
    }
    write_images(
        out,
        kept,
        shape,
        codes,
        class_names=CLASS_NAMES,
        manifest=manifest,
        truth_columns={SOURCE_COLUMN: ((), "int64")},
        extra_truth={SOURCE_COLUMN: np.arange(len(kept), dtype=np.int64)},
        overwrite=overwrite,
        progress=progress,
    )
    return ImportReport(
        out,
        "deeplense-lensfinding",
        shape,
        split_counts(labels, codes, CLASS_NAMES),
        tuple(skipped),
    )
