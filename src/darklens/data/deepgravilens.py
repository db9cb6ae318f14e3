"""Import the DeepGraviLens release (Pinciroli Vago & Fraternali 2023; Zenodo 7860294).

Layout (``ROOT`` may be the release folder, its ``dataset/`` folder or one subset folder)::

    dataset/<subset>/GROUP_{1..4}_ims_<T>.npy   images, reshaped to (N, 4, 45, 45) (g, r, i, z)
    dataset/<subset>/GROUP_{1..4}_lcs_<T>.npy   light curves, reshaped to (N, T, 4)
    dataset/<subset>/GROUP_{1..4}_mds_<T>.npy   metadata: one pickled dict per example

Subsets: ``high_cad_data`` (DESI-DOT), ``des_deep_data`` (DES-deep), ``full_data`` (DES-wide,
T = 7) and ``lsst_data`` (LSST-wide), T = 14 otherwise; T is read from the file names. GROUP_1
is "no lens", 2 a galaxy–galaxy lens, 3 a lensed SN Ia, 4 a lensed SN CC (the class order of the
lensed-transient simulator). Images and light curves are stored as released (DeepGraviLens's
preprocessing, not raw fluxes).

``ims`` and ``lcs`` are numeric and read with ``allow_pickle=False``. ``mds`` needs pickle: it
is read by the pickle-free stack machine of :mod:`darklens.data.safe_pickle`, which builds only
plain containers, numbers, strings and numeric numpy arrays/scalars and refuses every global.
Metadata keys whose value is a finite real number in every example become truth columns
``md_<key>`` (snake-cased); the others are listed in the report.

Duplicates: the release was augmented 8× by rotation and mirroring *before* its split, so the
same lens can sit in train and test. Each image gets a key that all of its 8 dihedral views
share (the smallest digest of the rounded views); images with equal keys form a duplicate group.
``dedupe=True`` puts each group in one split (stratified by class, near the requested
fractions); otherwise images are split one by one (``stratified_split``, as the other
importers) and the report counts the groups that span splits. The truth column
``duplicate_group`` stores each image's group id.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens.data.deeplense import LayoutError
from darklens.data.h5 import SPLIT_NAMES, DatasetWriter
from darklens.data.lensfind_folders import check_fractions, stratified_split
from darklens.data.safe_pickle import NpyReadError, load_pickled_npy
from darklens.guards import require_regular_file

CLASS_NAMES = ("no_lens", "galaxy_lens", "lensed_sn_ia", "lensed_sn_cc")
SUBSETS = {
    "high_cad_data": "DESI-DOT",
    "des_deep_data": "DES-deep",
    "full_data": "DES-wide",
    "lsst_data": "LSST-wide",
}
IMAGE_SHAPE = (4, 45, 45)
N_BANDS = 4
GROUPS = (1, 2, 3, 4)
ROUND_DECIMALS = 5
_FILE = re.compile(r"^GROUP_(?P<group>\d+)_(?P<kind>ims|lcs|mds)_(?P<t>\d+)\.npy$")
_BLOCK = 1024


class DeepGraviLensError(ValueError):
    """The release files do not fit together (counts, shapes, names); the message says how."""


@dataclass(frozen=True)
class DeepGraviLensReport:
    """What :func:`import_deepgravilens` wrote.

    ``duplicate_groups``: groups of ≥ 2 images that are dihedral views of each other;
    ``duplicate_images``: images in those groups; ``cross_split_groups``: groups whose images
    ended in more than one split (0 with ``dedupe``).
    """

    output: Path
    subset: str
    n_epochs: int
    counts: dict[str, dict[str, int]]
    duplicate_groups: int
    duplicate_images: int
    cross_split_groups: int
    deduped: bool
    truth_columns: tuple[str, ...]
    ignored_metadata: tuple[str, ...]

    @property
    def n_images(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


# -- safe metadata reading -----------------------------------------------------------------------
def load_metadata(path: str | Path) -> list[dict[str, Any]]:
    """The per-example metadata dicts of an ``mds`` file, read without running its pickle.

    Accepts an object array of dicts or one pickled list/array of dicts, rebuilt by the stack
    machine of :mod:`darklens.data.safe_pickle` (plain containers, numbers, strings, numpy
    arrays and scalars). Raises :class:`UnsafePickleError` for any global and
    :class:`NpyReadError` when unreadable or of another structure.
    """
    path = Path(path)
    payload = load_pickled_npy(path)
    items = list(payload.ravel()) if isinstance(payload, np.ndarray) else payload
    if not isinstance(items, (list, tuple)):
        raise NpyReadError(path, "expected one metadata dict per example")
    if len(items) == 1 and isinstance(items[0], (list, tuple, np.ndarray)):
        items = list(np.ravel(items[0])) if isinstance(items[0], np.ndarray) else list(items[0])
    if not all(isinstance(d, Mapping) for d in items):
        raise NpyReadError(path, "expected one metadata dict per example")
    return [dict(d) for d in items]


def metadata_columns(
    records: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """({``md_<key>``: float64 [N]} for keys that are finite real numbers in every record,
    the other keys, sorted)."""
    keys = sorted({str(k) for record in records for k in record}) if records else []
    columns: dict[str, np.ndarray] = {}
    ignored = []
    for key in keys:
        values = [record.get(key) for record in records]
        name = "md_" + re.sub(r"[^0-9a-z]+", "_", key.lower()).strip("_")
        numeric = all(
            isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_))
            and math.isfinite(float(v))
            for v in values
        )
        if numeric and name not in columns:
            columns[name] = np.array([float(v) for v in values], dtype=np.float64)
        else:
            ignored.append(key)
    return columns, tuple(ignored)


# -- files ---------------------------------------------------------------------------------------
def find_subset_dir(root: str | Path, subset: str) -> Path:
    """The folder holding ``GROUP_*_ims_<T>.npy`` for ``subset`` under ``root``."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no folder at {root}")
    for candidate in (root / "dataset" / subset, root / subset, root):
        if candidate.is_dir() and any(candidate.glob("GROUP_*_ims_*.npy")):
            return candidate
    raise LayoutError(
        f"{root} holds no DeepGraviLens subset {subset!r}: expected "
        f"dataset/{subset}/GROUP_{{1..4}}_{{ims,lcs,mds}}_<T>.npy (subsets: {', '.join(SUBSETS)})"
    )


def find_group_files(folder: Path) -> tuple[int, dict[tuple[int, str], Path]]:
    """(T, {(group, kind): path}) with every group's ims, lcs and mds for one T."""
    found: dict[tuple[int, str], list[tuple[int, Path]]] = {}
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match:
            key = (int(match["group"]), match["kind"])
            found.setdefault(key, []).append((int(match["t"]), path))
    epochs = sorted({t for entries in found.values() for t, _ in entries})
    if len(epochs) != 1:
        raise DeepGraviLensError(
            f"{folder}: files name {len(epochs)} different numbers of epochs "
            f"({', '.join(map(str, epochs)) or 'none'}); keep one set GROUP_*_<T>.npy per folder"
        )
    files = {}
    for group in GROUPS:
        for kind in ("ims", "lcs", "mds"):
            entries = found.get((group, kind))
            if not entries:
                raise DeepGraviLensError(
                    f"{folder} lacks GROUP_{group}_{kind}_{epochs[0]}.npy: every group needs "
                    "ims, lcs and mds"
                )
            files[(group, kind)] = entries[0][1]
    return epochs[0], files


def _load_numeric(path: Path) -> np.ndarray:
    try:
        require_regular_file(path)  # a named pipe would hang np.load
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as err:
        raise NpyReadError(path, f"not a numeric .npy array ({err})") from None


def read_group(
    files: Mapping[tuple[int, str], Path], group: int, n_epochs: int
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(images [N, 4, 45, 45], light curves [N, T, 4], metadata [N]) of one group, checked."""
    ims_path, lcs_path = files[(group, "ims")], files[(group, "lcs")]
    ims, lcs = _load_numeric(ims_path), _load_numeric(lcs_path)
    n = ims.shape[0] if ims.ndim else 0
    per_image = math.prod(IMAGE_SHAPE)
    if ims.size != n * per_image or n == 0:
        raise DeepGraviLensError(
            f"{ims_path}: shape {ims.shape} does not reshape to (N, 4, 45, 45) images"
        )
    if lcs.ndim == 0 or lcs.shape[0] != n:
        raise DeepGraviLensError(
            f"{lcs_path} has {lcs.shape[0] if lcs.ndim else 0} examples but {ims_path.name} "
            f"has {n}: the files of a group must agree"
        )
    if lcs.size != n * n_epochs * N_BANDS:
        raise DeepGraviLensError(
            f"{lcs_path}: shape {lcs.shape} does not reshape to (N={n}, T={n_epochs}, "
            f"{N_BANDS}); the file name says T={n_epochs}"
        )
    metadata = load_metadata(files[(group, "mds")])
    if len(metadata) != n:
        raise DeepGraviLensError(
            f"{files[(group, 'mds')]} has {len(metadata)} metadata records but {ims_path.name} "
            f"has {n} images: the files of a group must agree"
        )
    images = np.asarray(ims, dtype=np.float32).reshape(n, *IMAGE_SHAPE)
    curves = np.asarray(lcs, dtype=np.float32).reshape(n, n_epochs, N_BANDS)
    for name, values, path in (("images", images, ims_path), ("light curves", curves, lcs_path)):
        if not np.all(np.isfinite(values)):
            raise DeepGraviLensError(f"{path}: {name} contain NaN or infinite values")
    return images, curves, metadata


# -- duplicates and splits -----------------------------------------------------------------------
def dihedral_views(image: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations and mirror images of [C, H, W] (acting on H, W)."""
    views = []
    for flipped in (image, image[..., ::-1]):
        views += [np.rot90(flipped, k, axes=(-2, -1)) for k in range(4)]
    return views


def dihedral_key(image: np.ndarray, decimals: int = ROUND_DECIMALS) -> bytes:
    """A digest shared by all 8 dihedral views of an image (values rounded to ``decimals``)."""
    rounded = np.round(np.asarray(image, dtype=np.float64), decimals) + 0.0  # -0.0 → 0.0
    digests = [
        hashlib.blake2b(np.ascontiguousarray(view).tobytes(), digest_size=16).digest()
        for view in dihedral_views(rounded)
    ]
    return min(digests)


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image [N]: equal ids are dihedral views of one another (ids by first use)."""
    ids: dict[bytes, int] = {}
    return np.array(
        [ids.setdefault(dihedral_key(image), len(ids)) for image in images], dtype=np.int64
    )


def _targets(n: int, fractions: Sequence[float]) -> np.ndarray:
    """Images per split for n images: val and test rounded (halves up), the rest train."""
    val = min(math.floor(fractions[1] * n + 0.5), n)
    test = min(math.floor(fractions[2] * n + 0.5), n - val)
    return np.array([n - val - test, val, test], dtype=np.float64)


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fractions: Sequence[float], seed: int
) -> np.ndarray:
    """Split codes per image with every group in one split, each class near ``fractions``.

    Per class (of a group's first image), groups in seeded random order go to the split
    furthest below its target image count.
    """
    codes = np.zeros(len(labels), dtype=np.uint8)
    first = {}
    for index, group in enumerate(groups):
        first.setdefault(int(group), index)
    group_label = {group: int(labels[index]) for group, index in first.items()}
    sizes = np.bincount(groups)
    for label in np.unique(labels):
        members = np.array([g for g, lab in group_label.items() if lab == label], dtype=np.int64)
        shuffled = np.random.default_rng([seed, int(label)]).permutation(members)
        target = _targets(int(sizes[members].sum()), fractions)
        filled = np.zeros(3)
        assignment = {}
        for group in shuffled:
            split = int(np.argmax(target - filled))
            assignment[int(group)] = split
            filled[split] += sizes[group]
        for index, group in enumerate(groups):
            if int(group) in assignment:
                codes[index] = assignment[int(group)]
    return codes


def cross_split_groups(groups: np.ndarray, codes: np.ndarray) -> int:
    """How many duplicate groups have images in more than one split."""
    pairs = np.unique(np.stack([groups, codes.astype(np.int64)], axis=1), axis=0)
    return int(np.sum(np.bincount(pairs[:, 0]) > 1))


# -- import --------------------------------------------------------------------------------------
def import_deepgravilens(
    root_or_dir: str | Path,
    out: str | Path,
    *,
    subset: str = "des_deep_data",
    split: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    dedupe: bool = True,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> DeepGraviLensReport:
    """Convert one DeepGraviLens subset to a darklens dataset file (images + ``light_curves``).

    ``progress`` is called with the number of images written per block.
    """
    fractions = check_fractions(split)
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; the release has {', '.join(SUBSETS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    folder = find_subset_dir(root_or_dir, subset)
    n_epochs, files = find_group_files(folder)
    parts = [read_group(files, group, n_epochs) for group in GROUPS]
    images = np.concatenate([p[0] for p in parts])
    curves = np.concatenate([p[1] for p in parts])
    records = [record for p in parts for record in p[2]]
    labels = np.concatenate([np.full(len(p[0]), k, dtype=np.int64) for k, p in enumerate(parts)])
    truth, ignored = metadata_columns(records)
    groups = duplicate_groups(images)
    truth["duplicate_group"] = groups
    codes = (
        grouped_split(labels, groups, fractions, seed)
        if dedupe
        else stratified_split(labels, fractions, seed)
    )
    sizes = np.bincount(groups)
    columns = {name: ((), "float64") for name in truth}
    columns["duplicate_group"] = ((), "int64")
    manifest = {
        "kind": "lensed_transients",
        "source": "DeepGraviLens (Zenodo 7860294)",
        "subset": subset,
        "survey": SUBSETS[subset],
        "folder": str(folder),
        "n_epochs": n_epochs,
        "band_names": ["g", "r", "i", "z"],
        "split_fractions": list(fractions),
        "seed": seed,
        "dedupe": dedupe,
        "image_units": "as released (DeepGraviLens preprocessing)",
        "ignored_metadata": list(ignored),
        "darklens_version": __version__,
    }
    with DatasetWriter(
        out,
        len(images),
        IMAGE_SHAPE,
        CLASS_NAMES,
        manifest=manifest,
        truth_columns=columns,
        extra_inputs={"light_curves": (n_epochs, N_BANDS)},
        overwrite=overwrite,
    ) as writer:
        for start in range(0, len(images), _BLOCK):
            stop = min(start + _BLOCK, len(images))
            writer.write(
                start,
                images[start:stop],
                labels[start:stop],
                codes[start:stop],
                {name: values[start:stop] for name, values in truth.items()},
                {"light_curves": curves[start:stop]},
            )
            if progress is not None:
                progress(stop - start)
    counts = {
        split_name: {
            name: int(np.sum((codes == s) & (labels == k))) for k, name in enumerate(CLASS_NAMES)
        }
        for s, split_name in enumerate(SPLIT_NAMES)
    }
    return DeepGraviLensReport(
        output=out,
        subset=subset,
        n_epochs=n_epochs,
        counts=counts,
        duplicate_groups=int(np.sum(sizes > 1)),
        duplicate_images=int(sizes[sizes > 1].sum()),
        cross_split_groups=cross_split_groups(groups, codes),
        deduped=dedupe,
        truth_columns=tuple(sorted(columns)),
        ignored_metadata=ignored,
    )
