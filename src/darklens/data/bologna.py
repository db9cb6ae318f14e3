"""Import the Bologna Lens Finding Challenge (Metcalf et al. 2019, A&A 625, A119) into a dataset.

Layout under the folder given to :func:`import_bologna` (``ROOT``: the folder holding
``Public/``, or ``Public/`` itself)::

    Public/Band1/imageSDSS_R-<ID>.fits    ground-based set: one file per band and image
    Public/Band2/imageSDSS_I-<ID>.fits
    Public/Band3/imageSDSS_G-<ID>.fits
    Public/Band4/imageSDSS_U-<ID>.fits
    Public/Band1/imageEUC_VIS-<ID>.fits   space-based set: one band
    classifications.csv                   labels, one row per ID (next to Public/)

Images are assembled by ID with the bands in folder order, so channel ``k`` is ``Band{k+1}``:
(R, I, G, U) for the ground set, (VIS,) for the space set; the manifest records the order
(``channels``). Every ID must have every band and a CSV row, and every CSV row files; all bands
must share one shape (101 x 101 in the challenge). FITS files are read with
``astropy.io.fits`` (no memory map); reading them runs no code.

``classifications.csv`` columns are matched case-insensitively (spaces, dashes and underscores
ignored): ``ID`` and ``is_lens`` are required; the others become truth columns, with the
challenge's ``Einstein_area``, lensed-pixel count and lensed flux named :data:`TRUTH_ALIASES`
(``einstein_area``, ``n_lensed_pixels``, ``lensed_flux``; values as given, in the challenge's
units). Other numeric columns keep their (snake-cased) names; non-numeric ones are left out and
listed in the report.

Masked pixels are stored as 100 in the challenge files: each pixel equal to ``mask_value`` is
replaced by 0 (``mask_fill="zero"``), by the median of the band's unmasked pixels
(``"median"``; 0 when a whole band is masked) or by a given number (``mask_fill=-1.0``), and
the count over all bands is the truth column ``n_masked``. The truth column ``bologna_id``
keeps each image's challenge ID.

Labels are needed to import: the challenge's unlabelled test set has no ``classifications.csv``.
Score it with a trained lens finder instead: ``darklens predict -c RUN ROOT --rank -o
ranked.csv`` reads a Bologna folder directly (see :func:`iter_bologna_images`), with the same
band order and mask filling.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darklens import __version__
from darklens.data.deeplense import BadInputFile, LayoutError, SkippedFile
from darklens.data.h5 import LensDataset
from darklens.data.lensfind_folders import (
    CLASS_NAMES,
    ImageSource,
    check_fractions,
    screen_images,
    split_counts,
    stratified_split,
    write_images,
)
from darklens.guards import require_regular_file
from darklens.progress import Progress


@dataclass(frozen=True)
class Survey:
    """One challenge set: the file-name prefix and the band of each ``Band{k}`` folder."""

    name: str
    prefix: str
    bands: tuple[str, ...]


SURVEYS: tuple[Survey, ...] = (
    Survey("ground", "SDSS", ("R", "I", "G", "U")),
    Survey("space", "EUC", ("VIS",)),
)
MASK_VALUE = 100.0
MASK_FILLS = ("zero", "median")  # or a finite number, the fill value itself
CSV_NAME = "classifications.csv"
TRUTH_ALIASES: tuple[tuple[str, str], ...] = (
    ("einstein", "einstein_area"),
    ("pix", "n_lensed_pixels"),
    ("flux", "lensed_flux"),
)
ID_COLUMN = "bologna_id"
MASKED_COLUMN = "n_masked"

_FILE_NAME = re.compile(
    r"^image(?P<prefix>[a-z]+)_(?P<band>[a-z]+)-(?P<id>\d+)\.fits(?:\.gz)?$", re.IGNORECASE
)
_BAND_FOLDER = re.compile(r"^band(?P<index>\d+)$", re.IGNORECASE)


class BolognaError(ValueError):
    """The challenge files and labels do not match; the message lists the problems."""


@dataclass(frozen=True)
class Classifications:
    """The label table: IDs, is_lens (0/1), numeric truth columns, and what was left out."""

    path: Path
    ids: np.ndarray
    is_lens: np.ndarray
    truth: dict[str, np.ndarray]
    ignored_columns: tuple[str, ...]
    lines: dict[int, int]


@dataclass(frozen=True)
class BolognaImportReport:
    """What :func:`import_bologna` wrote; ``skipped`` lists IDs and files left out."""

    output: Path
    survey: str
    channels: tuple[str, ...]
    image_shape: tuple[int, ...]
    counts: dict[str, dict[str, int]]
    skipped: tuple[SkippedFile, ...]
    masked_images: int
    masked_pixels: int
    truth_columns: tuple[str, ...]
    ignored_columns: tuple[str, ...]

    @property
    def n_images(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())


@dataclass(frozen=True)
class BandFiles:
    """The FITS files of a challenge folder: ``files[ID]`` holds one path per band (or None)."""

    public: Path
    survey: Survey
    files: dict[int, list[Path | None]]
    problems: list[SkippedFile]

    def relative(self, path: Path) -> str:
        return path.relative_to(self.public.parent).as_posix()

    def expected(self, image_id: int, band: int) -> str:
        name = f"image{self.survey.prefix}_{self.survey.bands[band]}-{image_id}.fits"
        return f"{self.public.name}/Band{band + 1}/{name}"


# -- finding the files ---------------------------------------------------------------------------
def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def find_public(root: str | Path) -> Path:
    """The ``Public`` folder (holding ``Band1``...) of a challenge folder ``root``."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no folder at {root}")
    for candidate in (root / "Public", root):
        if (candidate / "Band1").is_dir():
            return candidate
    raise LayoutError(
        f"{root} is not a Bologna challenge folder: expected Public/Band1/imageSDSS_R-<ID>.fits "
        "(ground, Band1..Band4) or Public/Band1/imageEUC_VIS-<ID>.fits (space)"
    )


def _detect_survey(band1: Path) -> Survey:
    prefixes = {
        match["prefix"].upper()
        for path in _visible(band1)
        if (match := _FILE_NAME.match(path.name)) is not None
    }
    known = [s for s in SURVEYS if s.prefix in prefixes]
    if len(known) != 1:
        found = ", ".join(sorted(prefixes)) or "no image<SURVEY>_<BAND>-<ID>.fits files"
        raise LayoutError(
            f"cannot tell the challenge set from {band1} (found {found}): expected "
            "imageSDSS_R-<ID>.fits (ground) or imageEUC_VIS-<ID>.fits (space), not both"
        )
    return known[0]


def scan_band_files(root: str | Path) -> BandFiles:
    """Index the band files of a challenge folder by ID; odd files become ``problems``."""
    public = find_public(root)
    survey = _detect_survey(public / "Band1")
    folders = {
        int(match["index"]): path
        for path in _visible(public)
        if path.is_dir() and (match := _BAND_FOLDER.match(path.name)) is not None
    }
    n_bands = len(survey.bands)
    extra = sorted(k for k in folders if not 1 <= k <= n_bands)
    if extra:
        raise LayoutError(
            f"{public} has Band{extra[0]}, but the {survey.name}-based set has only "
            f"{n_bands} band(s) ({', '.join(survey.bands)}): remove the extra folder"
        )
    missing = [k for k in range(1, n_bands + 1) if k not in folders]
    if missing:
        raise LayoutError(
            f"{public} lacks Band{missing[0]} ({survey.prefix} {survey.bands[missing[0] - 1]}): "
            f"the {survey.name}-based set needs Band1..Band{n_bands}"
        )
    files: dict[int, list[Path | None]] = {}
    problems: list[SkippedFile] = []
    for index in range(n_bands):
        band = survey.bands[index]
        for path in _visible(folders[index + 1]):
            key = path.relative_to(public.parent).as_posix()
            match = _FILE_NAME.match(path.name)
            if match is None or not path.is_file():
                problems.append(
                    SkippedFile(
                        key, f"not a challenge image file image{survey.prefix}_{band}-<ID>.fits"
                    )
                )
                continue
            if (match["prefix"].upper(), match["band"].upper()) != (survey.prefix, band):
                problems.append(
                    SkippedFile(
                        key,
                        f"Band{index + 1} holds {survey.prefix} {band} images, not "
                        f"{match['prefix']} {match['band']}",
                    )
                )
                continue
            slots = files.setdefault(int(match["id"]), [None] * n_bands)
            if slots[index] is not None:
                problems.append(SkippedFile(key, f"a second {band}-band file for ID {match['id']}"))
                continue
            slots[index] = path
    return BandFiles(public, survey, files, problems)


# -- labels --------------------------------------------------------------------------------------
def _normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.strip().lower())


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _truth_name(header: str) -> str:
    key = _normalized(header)
    for keyword, canonical in TRUTH_ALIASES:
        if keyword in key:
            return canonical
    return _snake(header)


def _integer(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise BolognaError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise BolognaError(f"{where}: {what} {text!r} is not a whole number")
    return int(value)


def _label(text: str, where: str) -> int:
    word = text.strip().lower()
    if word in ("true", "false"):
        return int(word == "true")
    value = _integer(text, "is_lens", where)
    if value not in (0, 1):
        raise BolognaError(f"{where}: is_lens must be 0 or 1, got {text!r}")
    return value


def _float_or_none(text: str) -> float | None:
    """A CSV cell as a float (empty = NaN), or None when it is not a number."""
    if not text.strip():
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def read_classifications(path: str | Path) -> Classifications:
    """Read the challenge's label table; BolognaError names the line of any bad value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no label table at {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [
                (number, row)
                for number, row in enumerate(csv.reader(handle), start=1)
                if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")
            ]
    except (UnicodeDecodeError, csv.Error) as err:
        raise BolognaError(f"{path} is not a readable CSV text table ({err})") from None
    if not rows:
        raise BolognaError(f"{path} is empty: expected a header with ID and is_lens, then rows")
    header = [cell.strip() for cell in rows[0][1]]
    keys = [_normalized(name) for name in header]
    for required in ("id", "islens"):
        if required not in keys:
            raise BolognaError(
                f"{path} has no {'ID' if required == 'id' else 'is_lens'} column "
                f"(columns: {', '.join(header)}); the challenge table starts with ID, is_lens"
            )
    id_col, label_col = keys.index("id"), keys.index("islens")
    extra = [k for k in range(len(header)) if k not in (id_col, label_col)]
    names = [_truth_name(header[k]) for k in extra]
    duplicated = sorted({n for n in names if names.count(n) > 1 or n in (ID_COLUMN, MASKED_COLUMN)})
    if duplicated:
        raise BolognaError(f"{path}: several columns map to the truth name(s) {duplicated}")
    ids, labels, lines = [], [], {}
    values: list[list[float | None]] = [[] for _ in extra]
    for number, row in rows[1:]:
        where = f"{path} line {number}"
        if len(row) != len(header):
            raise BolognaError(f"{where} has {len(row)} values for {len(header)} columns")
        image_id = _integer(row[id_col], "ID", where)
        if image_id in lines:
            raise BolognaError(f"{where} repeats ID {image_id} of line {lines[image_id]}")
        lines[image_id] = number
        ids.append(image_id)
        labels.append(_label(row[label_col], where))
        for column, k in zip(values, extra, strict=True):
            column.append(_float_or_none(row[k]))
    if not ids:
        raise BolognaError(f"{path} has a header but no rows")
    truth, ignored = {}, []
    for name, column, k in zip(names, values, extra, strict=True):
        if any(v is None for v in column):
            ignored.append(header[k])
        else:
            truth[name] = np.array(column, dtype=np.float64)
    return Classifications(
        path,
        np.array(ids, dtype=np.int64),
        np.array(labels, dtype=np.int64),
        truth,
        tuple(ignored),
        lines,
    )


def find_classifications(public: Path) -> Path:
    """``classifications.csv`` next to ``Public/`` (or inside it), or a clear error."""
    for folder in (public.parent, public):
        for candidate in sorted(folder.glob("*.csv")):
            if candidate.name.lower() == CSV_NAME:
                return candidate
    raise FileNotFoundError(
        f"no {CSV_NAME} next to {public}: importing needs the challenge labels (pass csv= / "
        "--csv FILE). For the unlabelled test set, score the images with a trained lens finder "
        f"instead: darklens predict -c RUN {public.parent} --rank -o ranked.csv"
    )


# -- reading one image ---------------------------------------------------------------------------
def read_band(path: Path) -> np.ndarray:
    """The 2-D image of one band file as float32; BadInputFile names the file."""
    from astropy.io import fits

    try:
        require_regular_file(path)  # a named pipe would hang fits.open
    except (OSError, ValueError) as err:
        raise BadInputFile(path, str(err)) from None
    try:
        with fits.open(path, memmap=False) as hdus:
            data = next((np.array(h.data) for h in hdus if h.is_image and h.data is not None), None)
    except Exception as err:  # astropy raises OSError, ValueError, VerifyError... when damaged
        raise BadInputFile(path, f"not a readable FITS file ({err})") from None
    if data is None:
        raise BadInputFile(path, "holds no image data")
    if data.ndim != 2 or data.size == 0:
        raise BadInputFile(path, f"image of shape {data.shape}; expected one 2-D band image")
    if data.dtype.kind not in "iuf":
        raise BadInputFile(path, f"unsupported pixel type {data.dtype}")
    image = data.astype(np.float32)
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        raise BadInputFile(path, f"{bad} of {image.size} pixels are NaN or infinite")
    return image


MaskFill = str | float


def check_mask_fill(mask_fill: MaskFill) -> MaskFill:
    """``mask_fill`` if it is one of :data:`MASK_FILLS` or a finite number, else ValueError."""
    if isinstance(mask_fill, str):
        if mask_fill in MASK_FILLS:
            return mask_fill
    elif isinstance(mask_fill, (int, float)) and not isinstance(mask_fill, bool):
        if math.isfinite(mask_fill):
            return float(mask_fill)
    raise ValueError(
        f"mask_fill must be one of {', '.join(MASK_FILLS)} or a finite number, got {mask_fill!r}"
    )


def parse_mask_fill(text: str) -> MaskFill:
    """A command-line ``--mask-fill``: ``zero``, ``median`` or a number such as ``-1``."""
    word = text.strip().lower()
    try:
        return check_mask_fill(word if word in MASK_FILLS else float(word))
    except ValueError:
        raise ValueError(
            f"--mask-fill must be {', '.join(MASK_FILLS)} or a finite number, got {text!r}"
        ) from None


def fill_masked(band: np.ndarray, mask_value: float, mask_fill: MaskFill) -> tuple[np.ndarray, int]:
    """``band`` with pixels equal to ``mask_value`` replaced, and how many there were.

    ``mask_fill``: ``"zero"``, ``"median"`` of the unmasked pixels (0 when all are masked) or
    a number used as the fill value.
    """
    masked = band == np.float32(mask_value)
    count = int(masked.sum())
    if not count:
        return band, 0
    fill = 0.0
    if isinstance(mask_fill, (int, float)):
        fill = float(mask_fill)
    elif mask_fill == "median" and count < band.size:
        fill = float(np.median(band[~masked]))
    out = band.copy()
    out[masked] = fill
    return out, count


def read_bologna_image(
    paths: Sequence[Path], mask_value: float = MASK_VALUE, mask_fill: MaskFill = "zero"
) -> tuple[np.ndarray, int]:
    """One challenge image: float32 ``[C, H, W]`` from its band files, and its masked pixels."""
    bands, total = [], 0
    for path in paths:
        band, count = fill_masked(read_band(path), mask_value, mask_fill)
        if bands and band.shape != bands[0].shape:
            raise BadInputFile(
                path, f"band shape {band.shape} differs from {bands[0].shape} of {paths[0].name}"
            )
        bands.append(band)
        total += count
    return np.stack(bands), total


# -- import --------------------------------------------------------------------------------------
def _check_split(split: str | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(split, str):
        if split != "test":
            raise ValueError(f"split must be (train, val, test) fractions or 'test', got {split!r}")
        return (0.0, 0.0, 1.0)
    return check_fractions(split)


def match_labels(bands: BandFiles, table: Classifications) -> tuple[list[int], list[SkippedFile]]:
    """IDs with every band and a label row (sorted), and a problem for every other ID."""
    problems = list(bands.problems)
    labelled = set(table.lines)
    complete = []
    for image_id in sorted(set(bands.files) | labelled):
        slots = bands.files.get(image_id)
        if slots is None:
            problems.append(
                SkippedFile(
                    f"ID {image_id}",
                    f"listed in {table.path.name} (line {table.lines[image_id]}) but has no "
                    f"FITS files (expected {bands.expected(image_id, 0)})",
                )
            )
            continue
        missing = [k for k, path in enumerate(slots) if path is None]
        if missing:
            absent = ", ".join(
                f"band {bands.survey.bands[k]} ({bands.expected(image_id, k)})" for k in missing
            )
            problems.append(SkippedFile(f"ID {image_id}", f"missing {absent}"))
            continue
        if image_id not in labelled:
            problems.append(
                SkippedFile(
                    f"ID {image_id}",
                    f"{bands.relative(slots[0])} has no row in {table.path.name}",
                )
            )
            continue
        complete.append(image_id)
    return complete, problems


def _raise_problems(problems: Sequence[SkippedFile]) -> None:
    shown = "; ".join(f"{p.path}: {p.reason}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    raise BolognaError(
        f"{len(problems)} problem(s) with the challenge files: {shown}{more}. Fix them, or pass "
        "skip_bad=True (CLI: --skip-bad) to leave these IDs and files out"
    )


def _sources(
    bands: BandFiles,
    table: Classifications,
    ids: Sequence[int],
    mask_value: float,
    fill: MaskFill,
) -> list[ImageSource]:
    label_of = dict(zip(table.ids.tolist(), table.is_lens.tolist(), strict=True))

    def reader(paths: list[Path]) -> Callable[[], tuple[np.ndarray, dict[str, float]]]:
        def read() -> tuple[np.ndarray, dict[str, float]]:
            image, masked = read_bologna_image(paths, mask_value, fill)
            return image, {MASKED_COLUMN: masked}

        return read

    return [ImageSource(f"ID {i}", int(label_of[i]), reader(bands.files[i])) for i in ids]


def import_bologna(
    root: str | Path,
    out: str | Path,
    *,
    csv: str | Path | None = None,
    split: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    mask_value: float = MASK_VALUE,
    mask_fill: MaskFill = "zero",
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> BolognaImportReport:
    """Convert a labelled Bologna challenge folder into one darklens dataset file.

    ``csv`` defaults to the ``classifications.csv`` next to ``Public/``. ``split`` is
    (train, val, test) fractions, applied per class by a ``seed``-ed stratified split, or
    ``"test"`` to put every image in the test split (to evaluate a trained model on the
    challenge data). Images are ordered by ID and written in blocks, so memory stays bounded
    whatever the number of images. Mismatches between files and labels, incomplete IDs and
    unreadable files raise :class:`BolognaError` / :class:`BadInputFile`; with ``skip_bad``
    the affected IDs are left out and listed in the report and manifest.
    """
    mask_fill = check_mask_fill(mask_fill)
    fractions = _check_split(split)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite)")
    bands = scan_band_files(root)
    table = read_classifications(csv if csv is not None else find_classifications(bands.public))
    ids, problems = match_labels(bands, table)
    if problems and not skip_bad:
        _raise_problems(problems)
    if not ids:
        raise BolognaError(f"no image of {bands.public} has every band and a label")
    sources = _sources(bands, table, ids, mask_value, mask_fill)
    kept, bad, shape = screen_images(sources, skip_bad, progress)
    id_of = {source.key: image_id for source, image_id in zip(sources, ids, strict=True)}
    kept_ids = np.array([id_of[s.key] for s in kept], dtype=np.int64)
    labels = np.array([s.label for s in kept], dtype=np.int64)
    codes = stratified_split(labels, fractions, seed)
    order = np.argsort(table.ids)
    row_index = order[np.searchsorted(table.ids, kept_ids, sorter=order)]
    extra_truth = {name: column[row_index] for name, column in table.truth.items()}
    extra_truth[ID_COLUMN] = kept_ids
    skipped = [*problems, *bad]
    channels = bands.survey.bands
    manifest = {
        "source": "bologna-import",
        "root": str(bands.public.parent.resolve()),
        "labels": str(table.path.resolve()),
        "survey": bands.survey.name,
        "channels": list(channels),
        "channel_order": ", ".join(
            f"channel {k} = Band{k + 1} ({bands.survey.prefix} {band})"
            for k, band in enumerate(channels)
        ),
        "mask_value": mask_value,
        "mask_fill": mask_fill,
        "split_fractions": list(fractions),
        "seed": seed,
        "ignored_columns": list(table.ignored_columns),
        "skipped": [{"file": s.path, "reason": s.reason} for s in skipped],
        "darklens_version": __version__,
    }
    columns = {name: ((), "float64") for name in table.truth}
    columns[ID_COLUMN] = ((), "int64")
    columns[MASKED_COLUMN] = ((), "int64")
    write_images(
        out,
        kept,
        shape,
        codes,
        class_names=CLASS_NAMES,
        manifest=manifest,
        truth_columns=columns,
        extra_truth=extra_truth,
        overwrite=overwrite,
        progress=progress,
    )
    with LensDataset(out) as written:
        masked = written.truth(MASKED_COLUMN)
    return BolognaImportReport(
        output=out,
        survey=bands.survey.name,
        channels=channels,
        image_shape=shape,
        counts=split_counts(labels, codes, CLASS_NAMES),
        skipped=tuple(skipped),
        masked_images=int(np.count_nonzero(masked)),
        masked_pixels=int(masked.sum()),
        truth_columns=tuple(sorted(columns)),
        ignored_columns=table.ignored_columns,
    )


# -- unlabelled images, for prediction -----------------------------------------------------------
def is_bologna_folder(path: str | Path) -> bool:
    """True when ``path`` is a challenge folder (holds ``Public/Band1`` or is ``Public``)."""
    path = Path(path)
    return any((candidate / "Band1").is_dir() for candidate in (path / "Public", path))


def iter_bologna_images(
    root: str | Path,
    *,
    mask_value: float = MASK_VALUE,
    mask_fill: MaskFill = "zero",
    skip_bad: bool = False,
    on_skip: Callable[[SkippedFile], None] | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(ID, image [C, H, W])`` for every complete ID of a challenge folder, by increasing ID.

    No labels are needed (the unlabelled test set). Bands and masked pixels are handled as in
    :func:`import_bologna`. Incomplete IDs and unreadable files raise, or with ``skip_bad`` are
    passed to ``on_skip`` and left out.
    """
    mask_fill = check_mask_fill(mask_fill)
    bands = scan_band_files(root)
    problems = list(bands.problems)
    complete = []
    for image_id in sorted(bands.files):
        missing = [k for k, p in enumerate(bands.files[image_id]) if p is None]
        if missing:
            absent = ", ".join(
                f"band {bands.survey.bands[k]} ({bands.expected(image_id, k)})" for k in missing
            )
            problems.append(SkippedFile(f"ID {image_id}", f"missing {absent}"))
        else:
            complete.append(image_id)
    if problems and not skip_bad:
        _raise_problems(problems)
    for problem in problems:
        if on_skip is not None:
            on_skip(problem)
    for image_id in complete:
        try:
            image, _ = read_bologna_image(bands.files[image_id], mask_value, mask_fill)
        except BadInputFile as err:
            if not skip_bad:
                raise
            if on_skip is not None:
                on_skip(SkippedFile(f"ID {image_id}", f"{err.path.name}: {err.reason}"))
            continue
        yield str(image_id), image
