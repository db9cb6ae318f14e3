"""Read the images to predict on: darklens datasets, ``.npy``/``.npz`` arrays, FITS files, folders.

Every input becomes a stream of ``(id, image)`` pairs, images float32 ``[C, H, W]`` with finite
pixels, read one file at a time (``.npy`` stacks through a memory map, datasets in blocks), so a
folder of a million cutouts or a stack larger than memory streams in bounded memory.

* ``.h5`` / ``.hdf5`` — a darklens dataset: every image, or those of one ``split``; id
  ``path[index]`` with the image's index in the file.
* ``.npy`` — one image ``(H, W)``, ``(C, H, W)`` or ``(H, W, C)`` (the rules of
  :func:`darklens.data.deeplense.to_chw`: the channel axis is the only one of length at most
  4, first or last), id ``path``; or a stack ``(N, H, W)`` (every side longer than 4) or
  ``(N, C, H, W)`` / ``(N, H, W, C)``, ids ``path[k]``. A stack of at most four 2-D images is
  indistinguishable from one multi-channel image: save it as ``(N, 1, H, W)``. DeepLense
  ``[image, mass]`` object arrays are read with the restricted unpickler of
  :mod:`darklens.data.safe_pickle`, never with ``allow_pickle=True``.
* ``.npz`` — every array in the archive (or only ``npz_key``), each read like a ``.npy``; ids
  ``path:key`` or ``path:key[k]``. Pickled object arrays are refused.
* FITS (``.fits``, ``.fit``, ``.fts``, optionally ``.gz``) — the first image HDU that holds
  data; a 2-D image is one channel, a 3-D cube ``(C, H, W)`` gives its planes as channels. A
  celestial WCS in its header gives the pixel scale (checked against the model's) and the
  RA/Dec of the image centre (:attr:`PredictionInputs.coordinates`).

Folders are expanded to the supported files they hold (sorted by name; subfolders only with
``recursive``; hidden entries and other file types ignored). A file that cannot be read raises
:class:`BadInputError` naming it; with ``skip_bad`` it is left out and reported instead (a bad
image inside a stack skips just that image).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darklens.data.deeplense import MAX_CHANNELS, BadInputFile, read_deeplense_file, to_chw
from darklens.data.description import InputDescription, describe_dataset
from darklens.data.h5 import DatasetFormatError, LensDataset

DATASET_SUFFIXES = (".h5", ".hdf5")
NPY_SUFFIXES = (".npy",)
NPZ_SUFFIXES = (".npz",)
FITS_SUFFIXES = tuple(base + gz for base in (".fits", ".fit", ".fts") for gz in ("", ".gz"))
SUPPORTED = ", ".join((*DATASET_SUFFIXES, *NPY_SUFFIXES, *NPZ_SUFFIXES, *FITS_SUFFIXES))
DATASET_BLOCK = 256  # images read from a dataset file at a time


class BadInputError(ValueError):
    """One input (a file, or one image of a stack) cannot be predicted on; names it and why."""

    def __init__(self, source: str | Path, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = str(source)
        self.reason = reason


@dataclass(frozen=True)
class SkippedInput:
    """An input left out under ``skip_bad``: its id (file path, ``path[k]``...) and the reason."""

    source: str
    reason: str


Item = tuple[str, "np.ndarray | BadInputError"]
SkipHandler = Callable[[SkippedInput], None]
HeaderHandler = Callable[[str, InputDescription, "tuple[float, float] | None"], None]


# -- finding files -------------------------------------------------------------------------------
def input_kind(path: str | Path) -> str | None:
    """``"dataset"``, ``"npy"``, ``"npz"`` or ``"fits"`` from the file name; None if unsupported."""
    name = Path(path).name.lower()
    for kind, suffixes in (
        ("dataset", DATASET_SUFFIXES),
        ("npy", NPY_SUFFIXES),
        ("npz", NPZ_SUFFIXES),
        ("fits", FITS_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    return None


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    """Supported files in ``folder`` sorted by name, descending into subfolders in place."""
    with os.scandir(folder) as entries:
        visible = sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in visible:
        if entry.is_dir(follow_symlinks=False):
            if recursive:
                yield from _walk(Path(entry.path), recursive)
        elif input_kind(entry.name) is not None and entry.is_file():
            yield Path(entry.path)


def expand_inputs(inputs: Sequence[str | Path], recursive: bool = False) -> Iterator[Path]:
    """The files named by ``inputs`` (files as given, folders expanded), lazily and in order.

    A missing path or a folder without a single supported file raises (``FileNotFoundError``
    / ``ValueError``); a named file of an unsupported type is yielded and reported when read.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise ValueError("no inputs given: pass image files or folders")
    for given in inputs:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"no file or folder at {path}")
        if not path.is_dir():
            yield path
            continue
        found = False
        for file in _walk(path, recursive):
            found = True
            yield file
        if not found:
            hint = "" if recursive else " (use recursive / --recursive to include subfolders)"
            raise ValueError(f"no input files ({SUPPORTED}) in folder {path}{hint}")


# -- reading one file ----------------------------------------------------------------------------
def _finite(image: np.ndarray, source: str) -> np.ndarray:
    bad = int(np.count_nonzero(~np.isfinite(image)))
    if bad:
        raise BadInputError(source, f"{bad} of {image.size} pixels are NaN or infinite")
    return image


def _one_image(array: np.ndarray, source: str) -> np.ndarray:
    try:
        return to_chw(array, source)
    except BadInputFile as err:
        raise BadInputError(source, err.reason) from None


def _split_array(array: np.ndarray, source: str) -> Iterator[Item]:
    """One image or a stack of images from an array, by the module's shape rules."""
    single = array.ndim == 2 or (
        array.ndim == 3 and any(size <= MAX_CHANNELS for size in array.shape)
    )
    if single:
        yield source, _one_image(array, source)
        return
    if array.ndim not in (3, 4):
        raise BadInputError(
            source,
            f"cannot use an array of shape {array.shape}: expected one image (H, W), (C, H, W), "
            "(H, W, C) or a stack (N, H, W), (N, C, H, W), (N, H, W, C)",
        )
    if array.shape[0] == 0:
        raise BadInputError(source, f"empty stack of shape {array.shape}")
    for k in range(array.shape[0]):
        item_id = f"{source}[{k}]"
        try:
            yield item_id, _one_image(np.asarray(array[k]), item_id)
        except BadInputError as err:
            yield item_id, err


def _read_npy(path: Path) -> Iterator[Item]:
    source = str(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        # Object arrays (DeepLense [image, mass] pairs) and damaged files: the safe reader
        # rebuilds the first without running code and explains what is wrong with the second.
        try:
            image, _ = read_deeplense_file(path)
        except BadInputFile as err:
            raise BadInputError(source, err.reason) from None
        yield source, image
        return
    if not isinstance(array, np.ndarray):
        array.close()
        raise BadInputError(source, "is a .npz archive, not a .npy array: rename it to .npz")
    yield from _split_array(array, source)


def _read_npz(path: Path, key: str | None) -> Iterator[Item]:
    source = str(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as err:  # zip, zlib and numpy raise many types for a damaged archive
        raise BadInputError(source, f"not a readable .npz archive ({err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise BadInputError(source, "is a single .npy array, not a .npz archive: rename it")
    with archive:
        keys = list(archive.files)
        if key is not None:
            if key not in keys:
                raise BadInputError(source, f"has no array {key!r}; it holds {', '.join(keys)}")
            keys = [key]
        if not keys:
            raise BadInputError(source, "holds no arrays")
        for name in keys:
            item_id = f"{source}:{name}"
            try:
                array = archive[name]
            except Exception as err:  # pickled object arrays, or a damaged member
                yield item_id, BadInputError(item_id, f"cannot read this array ({err})")
                continue
            try:
                yield from _split_array(array, item_id)
            except BadInputError as err:
                yield item_id, err


def _read_fits(path: Path, on_header: HeaderHandler | None = None) -> Iterator[Item]:
    from astropy.io import fits

    source = str(path)
    try:
        with fits.open(path, memmap=False) as hdus:
            hdu = next((h for h in hdus if h.is_image and h.data is not None), None)
            data = None if hdu is None else np.asarray(hdu.data)
            header = None if hdu is None else hdu.header
    except Exception as err:  # astropy raises OSError, ValueError, VerifyError... when damaged
        raise BadInputError(source, f"not a readable FITS file ({err})") from None
    if data is None:
        raise BadInputError(source, "holds no image HDU with data")
    if on_header is not None and data.ndim in (2, 3):
        scale, centre = fits_pixel_scale_and_centre(header, data.shape[-2:])
        description = InputDescription(
            pixel_scale_arcsec=scale, image_size_px=(data.shape[-2], data.shape[-1])
        )
        on_header(source, description, centre)
    if data.ndim not in (2, 3) or data.size == 0:
        raise BadInputError(
            source,
            f"image HDU has shape {data.shape}; expected a 2-D image or a 3-D cube (C, H, W)",
        )
    if data.dtype.kind not in "iuf":
        raise BadInputError(source, f"unsupported pixel type {data.dtype}")
    image = np.ascontiguousarray(data if data.ndim == 3 else data[None], dtype=np.float32)
    yield source, _finite(image, source)


def _read_dataset(
    path: Path, split: str | None, on_header: HeaderHandler | None = None
) -> Iterator[Item]:
    source = str(path)
    try:
        dataset = LensDataset(path)
    except (DatasetFormatError, OSError) as err:
        raise BadInputError(source, f"not a readable darklens dataset ({err})") from None
    if on_header is not None:
        on_header(source, describe_dataset(dataset.manifest, dataset.image_shape), None)
    with dataset:
        try:
            indices = dataset.split_indices(split or "all")
        except KeyError as err:
            raise BadInputError(source, err.args[0]) from None
        if indices.size == 0:
            raise BadInputError(source, f"has no images in split {split!r}")
        for start in range(0, indices.size, DATASET_BLOCK):
            block = indices[start : start + DATASET_BLOCK]
            for index, image in zip(block, dataset.images(block), strict=True):
                item_id = f"{source}[{index}]"
                try:
                    yield item_id, _finite(image, item_id)
                except BadInputError as err:
                    yield item_id, err


def fits_pixel_scale_and_centre(
    header: Any, shape: tuple[int, ...]
) -> tuple[float | None, tuple[float, float] | None]:
    """(pixel scale in arcsec, (RA, Dec) in degrees of the image centre) from a FITS header's
    celestial WCS; (None, None) when it has none."""
    import warnings

    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header).celestial
            if not wcs.has_celestial:
                return None, None
            scale = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0
            ra, dec = wcs.pixel_to_world_values((shape[1] - 1) / 2, (shape[0] - 1) / 2)
    except Exception:  # a damaged or exotic WCS: treat as absent rather than fail the file
        return None, None
    centre = (float(ra), float(dec))
    if not (np.isfinite(scale) and scale > 0 and all(np.isfinite(centre))):
        return None, None
    return scale, centre


def read_images(
    path: str | Path,
    *,
    split: str | None = None,
    npz_key: str | None = None,
    on_header: HeaderHandler | None = None,
) -> Iterator[Item]:
    """``(id, image [C, H, W] float32)`` pairs of one file, or ``(id, BadInputError)`` for a
    bad image inside a stack. Raises :class:`BadInputError` when the file as a whole is bad.

    ``split`` (train/val/test/all) applies to darklens datasets, ``npz_key`` to ``.npz`` files.
    ``on_header(source, description, (ra, dec) or None)`` is called for datasets (their
    manifest) and FITS files (their WCS) before their images.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind is None:
        raise BadInputError(path, f"unsupported file type; expected one of {SUPPORTED}")
    if not path.is_file():
        raise BadInputError(path, "is not a file")
    if kind == "dataset":
        return _read_dataset(path, split, on_header)
    if kind == "npy":
        return _read_npy(path)
    if kind == "npz":
        return _read_npz(path, npz_key)
    return _read_fits(path, on_header)


# -- streams -------------------------------------------------------------------------------------
def _reject(error: BadInputError, skip_bad: bool, on_skip: SkipHandler | None) -> None:
    if not skip_bad:
        raise error
    if on_skip is not None:
        on_skip(SkippedInput(error.source, error.reason))


def _file_items(
    path: Path, split: str | None, npz_key: str | None, on_header: HeaderHandler | None = None
) -> Iterator[Item]:
    """:func:`read_images`, with a failure of the whole file turned into a final error item."""
    produced = 0
    try:
        for item in read_images(path, split=split, npz_key=npz_key, on_header=on_header):
            produced += not isinstance(item[1], BadInputError)
            yield item
    except BadInputError as err:
        if produced:  # the file failed part-way: say so rather than hide the partial read
            err = BadInputError(err.source, f"{err.reason} (after {produced} images)")
        yield err.source, err


def iter_images(
    inputs: Sequence[str | Path],
    *,
    split: str | None = None,
    npz_key: str | None = None,
    recursive: bool = False,
    in_chans: int | None = None,
    skip_bad: bool = False,
    on_skip: SkipHandler | None = None,
    on_header: HeaderHandler | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Stream ``(id, image)`` over files and folders; see the module docstring for the formats.

    ``in_chans`` rejects images with another channel count (as bad inputs). Bad inputs raise
    :class:`BadInputError`, or with ``skip_bad`` are passed to ``on_skip`` and left out.
    """
    for path in expand_inputs(inputs, recursive):
        for source, item in _file_items(path, split, npz_key, on_header):
            if not isinstance(item, BadInputError) and in_chans is not None:
                if item.shape[0] != in_chans:
                    item = BadInputError(
                        source,
                        f"has {item.shape[0]} channel(s) (shape {item.shape}, read as "
                        f"[C, H, W]) but the model takes {in_chans}",
                    )
            if isinstance(item, BadInputError):
                _reject(item, skip_bad, on_skip)
            else:
                yield source, item


def iter_blocks(
    items: Iterable[tuple[str, np.ndarray]], size: int
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Group a stream of ``(id, image)`` into ``(ids, [B, C, H, W])`` blocks of at most ``size``
    images; a block ends early where the image shape changes, so every block stacks."""
    if size < 1:
        raise ValueError(f"block size must be >= 1, got {size}")
    ids: list[str] = []
    images: list[np.ndarray] = []
    for item_id, image in items:
        if images and (len(images) == size or image.shape != images[0].shape):
            yield ids, np.stack(images)
            ids, images = [], []
        ids.append(item_id)
        images.append(image)
    if images:
        yield ids, np.stack(images)


class PredictionInputs:
    """The images of some files and folders, as an iterable of ``(id, image)`` or blocks.

    Holds the options of :func:`iter_images`; inputs skipped under ``skip_bad`` are collected in
    :attr:`skipped` as they are met (and also passed to ``on_skip`` when given).

    >>> # inputs = PredictionInputs(["cutouts/", "more.fits"], skip_bad=True)
    >>> # for ids, batch in inputs.blocks(256): ...
    >>> # inputs.skipped
    """

    def __init__(
        self,
        inputs: Sequence[str | Path],
        *,
        split: str | None = None,
        npz_key: str | None = None,
        recursive: bool = False,
        in_chans: int | None = None,
        skip_bad: bool = False,
        on_skip: SkipHandler | None = None,
        on_description: Callable[[str, InputDescription], None] | None = None,
    ) -> None:
        self.inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        self.on_description = on_description
        self.coordinates: dict[str, tuple[float, float]] = {}
        self.split = split
        self.npz_key = npz_key
        self.recursive = recursive
        self.in_chans = in_chans
        self.skip_bad = skip_bad
        self.on_skip = on_skip
        self.skipped: list[SkippedInput] = []

    def _skip(self, skipped: SkippedInput) -> None:
        self.skipped.append(skipped)
        if self.on_skip is not None:
            self.on_skip(skipped)

    def _header(
        self, source: str, description: InputDescription, centre: tuple[float, float] | None
    ) -> None:
        if centre is not None:
            self.coordinates[source] = centre
        if self.on_description is not None:
            self.on_description(source, description)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        return iter_images(
            self.inputs,
            split=self.split,
            npz_key=self.npz_key,
            recursive=self.recursive,
            in_chans=self.in_chans,
            skip_bad=self.skip_bad,
            on_skip=self._skip,
            on_header=self._header,
        )

    def blocks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        """``(ids, images [B, C, H, W])`` blocks of at most ``size`` same-shaped images."""
        return iter_blocks(self, size)
