"""Import and export the DeepLense community folder layouts of ``.npy`` images.

Accepted layouts under the folder given to :func:`import_deeplense` (``ROOT``)::

    ROOT/{class}/*.npy                                  flat: every image goes to the train split
    ROOT/{train,val,validation,test}/{class}/*.npy      GSoC common test, Task A notebook
    ROOT/Model_X/{class}/*.npy + ROOT/Model_X_test/...  DeepLense model folders (_test = test split)

Class folder names are matched case-insensitively against :data:`CLASS_ALIASES` (``no``/``sphere``/
``vort`` in the GSoC data, ``no_sub``/``cdm``/``axion`` in the model folders). The output file
always holds the three classes in the order :data:`CLASS_NAMES`, so labels mean the same thing in
every imported dataset. Files and folders whose names start with ``.`` are ignored; every other
entry in a class folder must be a valid ``.npy`` image.

Images may be ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` arrays of integers or floats. The channel
axis is the single axis of length at most :data:`MAX_CHANNELS`; it must come first or last, and
the image sides must be longer than that (so ``(1, 150, 150)`` and ``(64, 64, 3)`` are clear and
``(3, 3, 3)`` is rejected as ambiguous). Everything is stored as float32 ``[C, H, W]`` with the
pixel values unchanged. DeepLense axion files are pickled object arrays ``[image, axion_mass_eV]``;
they are read with :mod:`darklens.data.safe_pickle`, never with ``np.load(allow_pickle=True)``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darklens import __version__
from darklens._atomic import atomic_output
from darklens.data.h5 import SPLIT_NAMES, DatasetWriter, LensDataset
from darklens.data.safe_pickle import NpyReadError, load_npy_safely
from darklens.guards import OutsideFolderError, resolve_within
from darklens.progress import Progress, stage_counter

CLASS_NAMES: tuple[str, ...] = ("no_sub", "cdm", "axion")
CLASS_ALIASES: dict[str, str] = {
    "no": "no_sub",
    "no_sub": "no_sub",
    "none": "no_sub",
    "cdm": "cdm",
    "sphere": "cdm",
    "subhalo": "cdm",
    "axion": "axion",
    "vort": "axion",
    "vortex": "axion",
}
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "val": "val",
    "validation": "val",
    "test": "test",
}
MAX_CHANNELS = 4
MASS_COLUMN = "axion_mass_ev"
SOURCE_COLUMN = "source_index"
EXPORT_MARKER = ".darklens-export.json"
WRITE_BLOCK = 256

_MODEL_FOLDER = re.compile(r"^model_(?P<model>.+?)(?P<test>_test)?$", re.IGNORECASE)
_TRAIN = SPLIT_NAMES.index("train")
_TEST = SPLIT_NAMES.index("test")


class BadInputFile(ValueError):
    """One input file cannot become a dataset image; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class LayoutError(ValueError):
    """The folder tree is not one of the DeepLense layouts (unknown or mixed folders)."""


@dataclass(frozen=True)
class SkippedFile:
    """An input file left out by ``skip_bad=True``; ``path`` is relative to the import root."""

    path: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_deeplense` wrote: per-split class counts and the files it skipped."""

    output: Path
    layout: str
    image_shape: tuple[int, ...]
    counts: dict[str, dict[str, int]]
    skipped: tuple[SkippedFile, ...]

    @property
    def n_images(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


@dataclass(frozen=True)
class SourceFile:
    """One candidate image file: its path, path relative to the root, split code and label."""

    path: Path
    relative: str
    split: int
    label: int


# -- reading one file ------------------------------------------------------------------------------
def read_deeplense_file(path: str | Path) -> tuple[np.ndarray, float]:
    """Read one DeepLense ``.npy`` file as (float32 image ``[C, H, W]``, axion mass in eV).

    The mass is NaN for plain image files. Raises :class:`BadInputFile` naming the file for
    anything that is not a finite numeric image or a ``[image, mass]`` object array.
    """
    path = Path(path)
    if path.is_dir():
        raise BadInputFile(path, "is a folder; class folders must hold .npy files only")
    if path.suffix.lower() != ".npy":
        raise BadInputFile(path, "not a .npy file; class folders must hold .npy files only")
    try:
        array = load_npy_safely(path)
    except NpyReadError as err:
        raise BadInputFile(path, err.reason) from None
    mass = float("nan")
    if array.dtype.hasobject:
        array, mass = _split_image_and_mass(array, path)
    return to_chw(array, path), mass


def _split_image_and_mass(array: np.ndarray, path: Path) -> tuple[np.ndarray, float]:
    """Unpack the DeepLense axion pair ``np.array([image, mass_eV], dtype=object)``."""
    expected = "expected the DeepLense pair [image, axion_mass_eV]"
    if array.shape != (2,):
        raise BadInputFile(path, f"object array of shape {array.shape}: {expected}")
    image, mass = array[0], array[1]
    if not isinstance(image, np.ndarray) or image.dtype.hasobject:
        found = type(image).__name__
        raise BadInputFile(path, f"first element is a {found}, not an image: {expected}")
    if isinstance(mass, np.ndarray) and mass.ndim == 0:
        mass = mass[()]
    is_number = isinstance(mass, (int, float, np.integer, np.floating))
    if not is_number or isinstance(mass, (bool, np.bool_)):
        found = type(mass).__name__
        raise BadInputFile(path, f"second element is a {found}, not a mass: {expected}")
    if not np.isfinite(mass):
        raise BadInputFile(path, f"axion mass is {mass}; expected a finite number in eV")
    return image, float(mass)


def to_chw(array: np.ndarray, path: str | Path) -> np.ndarray:
    """Convert an ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` numeric array to float32 ``[C, H, W]``.

    The channel axis is the only axis of length <= MAX_CHANNELS and must be first or last.
    """
    rule = (
        f"expected (H, W), (C, H, W) or (H, W, C) with C <= {MAX_CHANNELS} "
        f"and H, W > {MAX_CHANNELS}"
    )
    if array.size == 0:
        raise BadInputFile(path, f"empty array of shape {array.shape}")
    if array.dtype.kind not in "iuf":
        raise BadInputFile(
            path, f"unsupported dtype {array.dtype}: expected integer or float pixels"
        )
    small_axes = [axis for axis, size in enumerate(array.shape) if size <= MAX_CHANNELS]
    if array.ndim == 2 and not small_axes:
        chw = array[np.newaxis]
    elif array.ndim == 3 and small_axes == [0]:
        chw = array
    elif array.ndim == 3 and small_axes == [2]:
        chw = np.moveaxis(array, 2, 0)
    else:
        raise BadInputFile(path, f"cannot use an array of shape {array.shape} as an image: {rule}")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        image = np.ascontiguousarray(chw, dtype=np.float32)
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        raise BadInputFile(path, f"{bad} of {image.size} pixels are NaN or infinite (in float32)")
    return image


# -- finding the files -----------------------------------------------------------------------------
def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _aliases_text() -> str:
    return "; ".join(
        f"{name}: {', '.join(a for a, c in CLASS_ALIASES.items() if c == name)}"
        for name in CLASS_NAMES
    )


def _reject_loose_images(folder: Path) -> None:
    loose = [p for p in _visible(folder) if p.is_file() and p.suffix.lower() == ".npy"]
    if loose:
        raise LayoutError(
            f"{loose[0]} lies outside a class folder: put images in class folders "
            f"({_aliases_text()})"
        )


def _class_folders(folder: Path) -> list[tuple[int, Path]]:
    """The (label, path) class folders directly under ``folder``; unknown folders are errors."""
    _reject_loose_images(folder)
    found: dict[int, Path] = {}
    for sub in (p for p in _visible(folder) if p.is_dir()):
        canonical = CLASS_ALIASES.get(sub.name.lower())
        if canonical is None:
            raise LayoutError(
                f"unknown class folder {sub}: accepted names (case-insensitive) are "
                f"{_aliases_text()}"
            )
        label = CLASS_NAMES.index(canonical)
        if label in found:
            raise LayoutError(f"{found[label]} and {sub} are both class {canonical}: merge them")
        found[label] = sub
    return sorted(found.items())


def _split_groups(root: Path) -> tuple[str, list[tuple[int, Path]]]:
    """Detect the layout: (layout name, [(split code, folder holding class folders)])."""
    folders = [p for p in _visible(root) if p.is_dir()]
    classes = [p for p in folders if p.name.lower() in CLASS_ALIASES]
    splits = [p for p in folders if p.name.lower() in SPLIT_ALIASES]
    models = [p for p in folders if _MODEL_FOLDER.match(p.name)]
    by_kind = {"class": classes, "split": splits, "model": models}
    kinds = [kind for kind, found in by_kind.items() if found]
    if len(kinds) > 1:
        raise LayoutError(
            f"{root} mixes {' and '.join(kinds)} folders: import one layout at a time"
        )
    if classes or not folders:
        return "flat", [(_TRAIN, root)]
    known = set(splits) | set(models)
    unknown = [p.name for p in folders if p not in known]
    expected = (
        f"class folders ({_aliases_text()}), split folders ({', '.join(SPLIT_ALIASES)}) "
        "or Model_X + Model_X_test"
    )
    if unknown:
        raise LayoutError(f"unknown folder(s) {', '.join(unknown)} in {root}: expected {expected}")
    if splits:
        codes = [SPLIT_NAMES.index(SPLIT_ALIASES[p.name.lower()]) for p in splits]
        duplicated = [p.name for p, c in zip(splits, codes, strict=True) if codes.count(c) > 1]
        if duplicated:
            raise LayoutError(f"{root}: folders {', '.join(duplicated)} are the same split")
        return "splits", list(zip(codes, splits, strict=True))
    names = sorted({_MODEL_FOLDER.match(p.name)["model"].lower() for p in models})
    if len(names) > 1:
        raise LayoutError(
            f"{root} holds several models ({', '.join(p.name for p in models)}): import one model "
            "at a time from a folder holding only Model_X and Model_X_test"
        )
    groups = [(_TEST if _MODEL_FOLDER.match(p.name)["test"] else _TRAIN, p) for p in models]
    if len({code for code, _ in groups}) < len(groups):
        raise LayoutError(f"{root}: folders {', '.join(p.name for p in models)} are the same split")
    return "model", groups


def discover_files(root: str | Path) -> tuple[str, list[SourceFile]]:
    """Find the layout and every candidate image file, sorted by (split, class, file name)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no folder at {root}")
    if not root.is_dir():
        raise LayoutError(f"{root} is a file; point at the folder that holds the class folders")
    check_export_complete(root)
    _reject_loose_images(root)
    layout, groups = _split_groups(root)
    files = []
    for split, folder in groups:
        for label, class_dir in _class_folders(folder):
            files += [
                SourceFile(path, path.relative_to(root).as_posix(), split, label)
                for path in _visible(class_dir)
            ]
    if not files:
        raise LayoutError(
            f"no image files under {root}: expected .npy files in class folders "
            f"({_aliases_text()}), optionally inside split or Model_X folders"
        )
    files.sort(key=lambda f: (f.split, f.label, f.path.name))
    return layout, files


# -- import ----------------------------------------------------------------------------------------
def _check_files(
    files: Sequence[SourceFile], skip_bad: bool, progress: Progress | None
) -> tuple[list[SourceFile], list[SkippedFile], tuple[int, ...]]:
    """First pass: read and validate every file; returns the good ones and their common shape."""
    advance = stage_counter(progress, "checking files", len(files))
    good: list[tuple[SourceFile, tuple[int, ...]]] = []
    skipped: list[SkippedFile] = []
    for source in files:
        try:
            image, _ = read_deeplense_file(source.path)
            good.append((source, image.shape))
        except BadInputFile as err:
            if not skip_bad:
                raise
            skipped.append(SkippedFile(source.relative, err.reason))
        advance(1)
    if not good:
        reasons = "; ".join(f"{s.path}: {s.reason}" for s in skipped[:3])
        raise ValueError(f"no valid images: all {len(files)} files were skipped ({reasons} ...)")
    shapes = Counter(shape for _, shape in good)
    # Strict mode fails at the first file that differs from the first image; skip_bad keeps the
    # most common shape (ties: the first seen) and skips the rest.
    shape = shapes.most_common(1)[0][0] if skip_bad else good[0][1]
    first_with_shape = next(source for source, s in good if s == shape)
    kept = []
    for source, image_shape in good:
        if image_shape == shape:
            kept.append(source)
            continue
        reason = (
            f"image shape {image_shape} (C, H, W) differs from {shape} of "
            f"{first_with_shape.relative}: all images in one dataset must share one shape"
        )
        if not skip_bad:
            raise BadInputFile(source.path, reason)
        skipped.append(SkippedFile(source.relative, reason))
    return kept, skipped, shape


def _counts(files: Sequence[SourceFile]) -> dict[str, dict[str, int]]:
    tally = Counter((f.split, f.label) for f in files)
    return {
        split: {name: tally[(code, label)] for label, name in enumerate(CLASS_NAMES)}
        for code, split in enumerate(SPLIT_NAMES)
        if any(tally[(code, label)] for label in range(len(CLASS_NAMES)))
    }


def import_deeplense(
    root: str | Path,
    out: str | Path,
    *,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Convert a DeepLense folder tree into one darklens dataset file (``progress``: see
    :mod:`darklens.progress`).

    Splits come from the folder names (everything is ``train`` when there are no split
    folders). Truth columns: ``axion_mass_ev`` (eV, NaN for plain images) and ``source_index``
    (position in ``manifest["source_files"]``, the file paths relative to ``root``). Bad files
    raise :class:`BadInputFile`, or with ``skip_bad=True`` are left out and listed in the
    report and manifest. Files are read twice (validate, then write in blocks) so memory
    stays bounded by one block.
    """
    root, out = Path(root), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    layout, files = discover_files(root)
    columns = {MASS_COLUMN: ((), "float64"), SOURCE_COLUMN: ((), "int64")}
    kept, skipped, shape = _check_files(files, skip_bad, progress)
    manifest = {
        "source": "deeplense-import",
        "root": str(root.resolve()),
        "layout": layout,
        "files": len(kept),
        "skipped": [{"file": s.path, "reason": s.reason} for s in skipped],
        "source_files": [f.relative for f in kept],
        "darklens_version": __version__,
    }
    advance = stage_counter(progress, "writing dataset", len(kept))
    with DatasetWriter(
        out,
        n=len(kept),
        image_shape=shape,
        class_names=CLASS_NAMES,
        manifest=manifest,
        truth_columns=columns,
        overwrite=overwrite,
    ) as writer:
        for start in range(0, len(kept), WRITE_BLOCK):
            block = kept[start : start + WRITE_BLOCK]
            images, masses = zip(*(read_deeplense_file(f.path) for f in block), strict=True)
            writer.write(
                start,
                np.stack(images),
                np.array([f.label for f in block], dtype=np.int64),
                np.array([f.split for f in block], dtype=np.uint8),
                {
                    MASS_COLUMN: np.array(masses, dtype=np.float64),
                    SOURCE_COLUMN: np.arange(start, start + len(block), dtype=np.int64),
                },
            )
            advance(len(block))
    return ImportReport(out, layout, shape, _counts(kept), tuple(skipped))


# -- export ----------------------------------------------------------------------------------------
def _export_folder_names(class_names: Sequence[str], path: Path) -> list[str]:
    """Canonical DeepLense folder name for each class of the dataset, or a clear error."""
    names = [CLASS_ALIASES.get(name.lower()) for name in class_names]
    if None in names or len(set(names)) != len(names):
        raise ValueError(
            f"{path} has classes {', '.join(class_names)}; the deeplense layout holds each of "
            f"{', '.join(CLASS_NAMES)} at most once (aliases: {_aliases_text()})"
        )
    return names


def _export_masses(ds: LensDataset) -> np.ndarray:
    if MASS_COLUMN not in ds.truth_columns:
        return np.full(len(ds), np.nan)
    masses = ds.truth(MASS_COLUMN)
    if masses.ndim != 1:
        raise ValueError(
            f"{ds.path}: truth column {MASS_COLUMN} has shape {masses.shape}; expected [N]"
        )
    return masses


def _read_export_marker(folder: Path) -> dict:
    marker = folder / EXPORT_MARKER
    try:
        record = json.loads(marker.read_text())
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        record["files"], record["folders"]  # noqa: B018 - both must be present
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{marker} is unreadable ({err}); empty {folder} by hand") from None
    return record


def _remove_previous_export(out_dir: Path) -> None:
    """Delete the files and folders that a previous export listed in its marker.

    Every listed path is resolved (symlinks of its folders too) and must stay inside
    ``out_dir`` before anything is deleted; a link itself is removed, never its target.
    """
    marker = out_dir / EXPORT_MARKER
    record = _read_export_marker(out_dir)
    try:
        listed = [resolve_within(out_dir, p) for p in record["files"] + record["folders"]]
    except (OutsideFolderError, TypeError) as err:
        raise ValueError(
            f"{marker} lists a path outside {out_dir} ({err}); empty it by hand"
        ) from None
    for target in listed:
        if target.is_symlink() or target.is_file():
            target.unlink()
    for target in sorted(listed, key=lambda p: -len(p.parts)):
        if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
            target.rmdir()
    marker.unlink()


def check_export_complete(root: Path) -> None:
    """Raise LayoutError if ``root`` is a darklens export that never finished (its marker lacks
    ``complete: true``, written last)."""
    if not (root / EXPORT_MARKER).is_file():
        return
    try:
        complete = json.loads((root / EXPORT_MARKER).read_text()).get("complete") is True
    except (OSError, ValueError, AttributeError):
        complete = False
    if not complete:
        raise LayoutError(
            f"{root} is an unfinished darklens export (its {EXPORT_MARKER} is not marked "
            "complete: the export was interrupted or failed): export it again"
        )


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; choose a folder for the export")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        out_dir.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise FileExistsError(
            f"{out_dir} is not empty; pass overwrite=True (CLI: --overwrite) to replace an "
            "earlier export"
        )
    if not (out_dir / EXPORT_MARKER).is_file():
        raise FileExistsError(
            f"refusing to overwrite {out_dir}: it has no {EXPORT_MARKER}, so darklens export "
            "did not write it; choose an empty or new folder"
        )
    _remove_previous_export(out_dir)


def _save_image(path: Path, image: np.ndarray, mass: float) -> None:
    """Write one image file atomically (a temporary file renamed into place)."""
    pixels = image[0] if image.shape[0] == 1 else image
    with atomic_output(path) as handle:
        if np.isfinite(mass):
            pair = np.empty(2, dtype=object)
            pair[0], pair[1] = pixels, float(mass)
            np.save(handle, pair, allow_pickle=True)
        else:
            np.save(handle, pixels)


def export_deeplense(
    dataset_path: str | Path,
    out_dir: str | Path,
    *,
    split: str = "all",
    overwrite: bool = False,
) -> int:
    """Write a dataset back as ``out_dir/{train,val,test}/{no_sub,cdm,axion}/<index>.npy``.

    ``<index>`` is the image's position in the dataset file, zero-padded so that sorted file
    names keep the file order. Images are float32 ``(H, W)`` when single-channel, else
    ``(C, H, W)``. Images with a finite ``axion_mass_ev`` truth are written as the DeepLense object
    array ``[image, mass_eV]`` (read by the community loaders with ``np.load(allow_pickle=True)``
    and by :func:`import_deeplense` safely). A hidden ``.darklens-export.json`` lists the files
    so that ``overwrite=True`` can replace an earlier export; folders darklens did not write are
    never overwritten, and no path may lead outside ``out_dir`` (symlinks are resolved). Each
    file is written atomically and the marker is marked ``complete`` last; importing an export
    that is not complete is refused. Returns the number of images written.
    """
    if split != "all" and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; choose all, {', '.join(SPLIT_NAMES)}")
    out_dir = Path(out_dir)
    with LensDataset(dataset_path) as ds:
        folders = _export_folder_names(ds.class_names, ds.path)
        masses = _export_masses(ds)
        indices = ds.split_indices(split)
        if indices.size == 0:
            raise ValueError(f"{ds.path} has no images in split {split!r}")
        width = len(str(len(ds) - 1))
        relative = [
            f"{ds.split_names[ds.split_codes[i]]}/{folders[ds.labels[i]]}/{i:0{width}d}.npy"
            for i in indices
        ]
        splits = [ds.split_names[code] for code in np.unique(ds.split_codes[indices])]
        created = splits + [f"{s}/{folder}" for s in splits for folder in folders]
        _prepare_out_dir(out_dir, overwrite)
        marker = {
            "source": "darklens-export",
            "layout": "deeplense",
            "dataset": str(ds.path.resolve()),
            "darklens_version": __version__,
            "folders": created,
            "files": relative,
        }
        # Written first (incomplete), so that even an interrupted export can be replaced with
        # overwrite=True; marked complete last, and import refuses an export that is not.
        _write_marker(out_dir, {**marker, "complete": False})
        for folder in created:
            resolve_within(out_dir, folder).mkdir(parents=True, exist_ok=True)
        for start in range(0, indices.size, WRITE_BLOCK):
            block = indices[start : start + WRITE_BLOCK]
            for offset, image in enumerate(ds.images(block)):
                target = resolve_within(out_dir, relative[start + offset])
                _save_image(target, image, masses[block[offset]])
        _write_marker(out_dir, {**marker, "complete": True})
    return int(indices.size)


def _write_marker(out_dir: Path, record: dict) -> None:
    with atomic_output(out_dir / EXPORT_MARKER) as handle:
        handle.write(json.dumps(record).encode())
