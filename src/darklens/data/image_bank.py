"""Banks of galaxy images used as lensed sources (``source.kind = image_bank``).

A bank is named by ``source.bank``: a built-in name (:data:`BUILTIN_BANKS`), a folder of ``.npy``
and ``.fits`` images (one galaxy per file, sorted by name), or an HDF5 file holding one array of
images (``galaxies.h5``, dataset ``images``; ``galaxies.h5:cutouts`` names another dataset).
Folder images are ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` arrays (C ≤ 4); an HDF5 array is
``[N, H, W]``, ``[N, C, H, W]`` or ``[N, H, W, C]``. Each image becomes one 2-D float64 array:

- ``channel`` picks one channel of multi-channel images (None: their mean);
- ``background="corner_median"`` subtracts the median of the first 50 rows and columns, as
  DeepLenseSim's Model IV scripts do with their Galaxy10 images (``"none"``: kept as given);
- the image is scaled to unit total flux (sum of pixels = 1), so a source's brightness is set
  by the simulator's magnitude alone. Negative pixels (sky noise after a background
  subtraction) are kept, as lenstronomy's ``INTERPOL`` keeps them.

Bad input fails with :class:`~darklens.data.deeplense.BadInputFile` naming the file: NaN or
infinite pixels, sides outside 8..1024 pixels, a channel that does not exist, or a total flux
that is not positive; an empty folder or an unknown file type fails naming the folder or file.
Banks are held in memory (at most :data:`MAX_BANK_PIXELS` pixels in all).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from darklens.data.deeplense import BadInputFile, read_deeplense_file, to_chw

BACKGROUNDS = ("none", "corner_median")
CORNER_PX = 50
MIN_SIDE_PX, MAX_SIDE_PX = 8, 1024
MAX_BANK_PIXELS = 64 * 1024 * 1024
DEFAULT_DATASET = "images"
_FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def _hubble_deep_field() -> tuple[np.ndarray, ...]:
    from darklens.data.hubble_deep_field import hubble_deep_field_cutouts

    return hubble_deep_field_cutouts()


BUILTIN_BANKS: dict[str, Callable[[], tuple[np.ndarray, ...]]] = {
    "hubble_deep_field": _hubble_deep_field,
}


@dataclass(frozen=True)
class ImageBank:
    """Galaxy images of unit total flux (float64, any sizes), with where each came from.

    ``sha256`` identifies the exact pixels (recorded in dataset manifests).
    """

    name: str
    images: tuple[np.ndarray, ...]
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for image in self.images:
            digest.update(np.asarray(image.shape, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(image, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All pixels in one flat array, with each image's offset, height and width (int64)."""
        heights = np.array([im.shape[0] for im in self.images], dtype=np.int64)
        widths = np.array([im.shape[1] for im in self.images], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(heights * widths)[:-1]]).astype(np.int64)
        flat = np.concatenate([im.ravel() for im in self.images])
        return flat, offsets, heights, widths


def load_image_bank(spec: str, channel: int | None = None, background: str = "none") -> ImageBank:
    """The bank named by ``spec`` (see the module docstring), read once per file version."""
    if background not in BACKGROUNDS:
        raise ValueError(f"bank background must be one of {BACKGROUNDS}, got {background!r}")
    if spec in BUILTIN_BANKS:
        return _builtin(spec)
    path_text, _, dataset = spec.partition(":") if _is_hdf5(spec) else (spec, "", "")
    path = Path(path_text).expanduser()
    if not path.exists():
        builtin = ", ".join(BUILTIN_BANKS)
        raise FileNotFoundError(
            f"image bank {spec!r} is neither a built-in bank ({builtin}) nor an existing file "
            "or folder"
        )
    stat = path.stat()
    return _load_path(
        str(path.resolve()), dataset or DEFAULT_DATASET, channel, background, stat.st_mtime_ns,
        stat.st_size,
    )  # fmt: skip


def _is_hdf5(spec: str) -> bool:
    head = spec.split(":", 1)[0].lower()
    return head.endswith(_HDF5_SUFFIXES)


@lru_cache(maxsize=4)
def _builtin(name: str) -> ImageBank:
    images = BUILTIN_BANKS[name]()
    return ImageBank(name, images, tuple(f"{name}[{i}]" for i in range(len(images))))


@lru_cache(maxsize=4)
def _load_path(
    path_text: str, dataset: str, channel: int | None, background: str, _mtime: int, _size: int
) -> ImageBank:
    path = Path(path_text)
    if path.is_dir():
        files = _bank_files(path)
        raw = [(str(f), _read_file(f)) for f in files]
    else:
        raw = _read_hdf5(path, dataset)
    total = sum(image[0].size for _, image in raw)
    if total > MAX_BANK_PIXELS:
        raise BadInputFile(
            path,
            f"holds {total:,} pixels, more than the {MAX_BANK_PIXELS:,} a bank may hold in memory: "
            "use a subset of the images (or smaller cutouts)",
        )
    images = tuple(_prepare(chw, source, channel, background) for source, chw in raw)
    return ImageBank(str(path), images, tuple(source for source, _ in raw))


def _bank_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for f in files:
        if f.is_dir() or not (f.name.lower().endswith(_FITS_SUFFIXES) or f.suffix == ".npy"):
            raise BadInputFile(f, "not an image file: a bank folder holds .npy and .fits images")
    if not files:
        raise BadInputFile(
            folder, "holds no .npy or .fits images: an image bank needs at least one"
        )
    return files


def _read_file(path: Path) -> np.ndarray:
    """One folder image as float32 [C, H, W] (BadInputFile names the file)."""
    if path.suffix == ".npy":
        image, _ = read_deeplense_file(path)
        return image
    from darklens.data.bologna import read_band

    return read_band(path)[np.newaxis]


def _read_hdf5(path: Path, dataset: str) -> list[tuple[str, np.ndarray]]:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if dataset not in handle or not isinstance(handle[dataset], h5py.Dataset):
                found = ", ".join(k for k in handle if isinstance(handle[k], h5py.Dataset))
                raise BadInputFile(
                    path, f"has no image array {dataset!r} (arrays: {found or 'none'})"
                )
            array = handle[dataset][()]
    except OSError as err:
        raise BadInputFile(path, f"not a readable HDF5 file ({err})") from None
    if array.ndim not in (3, 4) or len(array) == 0:
        raise BadInputFile(
            path,
            f"{dataset!r} has shape {array.shape}; expected [N, H, W], [N, C, H, W] or "
            "[N, H, W, C] with N >= 1",
        )
    return [(f"{path}:{dataset}[{i}]", to_chw(array[i], f"{path}:{dataset}[{i}]"))
            for i in range(len(array))]  # fmt: skip


def _prepare(chw: np.ndarray, source: str, channel: int | None, background: str) -> np.ndarray:
    """[C, H, W] → one unit-flux 2-D float64 image (BadInputFile names ``source``)."""
    if channel is None:
        image = chw.astype(np.float64).mean(axis=0)
    elif 0 <= channel < chw.shape[0]:
        image = chw[channel].astype(np.float64)
    else:
        raise BadInputFile(source, f"has {chw.shape[0]} channel(s); source.bank_channel={channel}")
    if not np.all(np.isfinite(image)):
        raise BadInputFile(source, "holds NaN or infinite pixels")
    if not (MIN_SIDE_PX <= min(image.shape) and max(image.shape) <= MAX_SIDE_PX):
        raise BadInputFile(
            source,
            f"image of {image.shape[0]} x {image.shape[1]} pixels; bank images must have sides "
            f"of {MIN_SIDE_PX}..{MAX_SIDE_PX} pixels",
        )
    if background == "corner_median":
        image = image - np.median(image[:CORNER_PX, :CORNER_PX])
    total = float(image.sum())
    if not total > 0:
        raise BadInputFile(
            source, f"total flux {total:.3g} is not positive (after background {background!r})"
        )
    return image / total
