"""FITS cutouts: one file per image, as astronomers' tools (DS9, astropy, any FITS reader) and
``darklens predict`` read them, plus a catalogue of labels, truth and extra inputs.

    OUT/README.md                          dataset card
    OUT/darklens.json                      the export's schema and its files
    OUT/catalog.fits                       one row per image: INDEX, FILE, LABEL, SPLIT, the truth
                                           columns and INPUT_<name> extra inputs
    OUT/images/{split}/{class}/{index}.fits  the image: 2-D for one band, else a [bands, H, W]
                                           cube (``darklens predict OUT/images --recursive``)

Image headers carry ``PIXSCALE`` (arcsec/pixel) and the band names (``FILTER`` for one band,
``NBANDS`` + ``BAND1..BANDn`` otherwise) when the dataset records them, and ``CLASS``, ``LABEL``,
``SPLIT``, ``DLINDEX`` (the image's index in the dataset), ``PRESET``, ``DLSEED``, ``DLVERSN``.
Pixels are stored as IEEE float32 (big-endian, as FITS wants), so ``darklens import`` writes
back the exported file's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from darklens import __version__
from darklens.data.exchange.card import dataset_card, default_license
from darklens.data.exchange.common import (
    CARD,
    ExchangeError,
    RowImporter,
    Rows,
    Schema,
    Source,
    export_rows,
    prepare_out_dir,
    read_marker,
    write_marker,
)
from darklens.data.h5 import SPLIT_NAMES
from darklens.data.memory import DatasetReader, open_dataset
from darklens.progress import Progress, stage_counter

CATALOG = "catalog.fits"
IMAGES_DIR = "images"
BLOCK = 256
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def export_fits(
    source: Source,
    out_dir: str | Path,
    *,
    split: str = "all",
    overwrite: bool = False,
    license: str | None = None,
) -> int:
    """Write a dataset (file path, ``LensDataset`` or ``InMemoryDataset``) as FITS cutouts plus
    ``catalog.fits`` and a dataset card; returns the number of images written."""
    from astropy.io import fits

    out_dir = Path(out_dir)
    reader = open_dataset(source)
    rows = export_rows(reader, split)
    unsafe = [name for name in reader.class_names if not _SAFE_NAME.match(name)]
    if unsafe:
        raise ValueError(f"class names {unsafe} cannot be folder names; rename the classes")
    schema = Schema.of(reader, "fits", int(rows.size))
    width = len(str(len(reader) - 1))
    relative = [
        f"{IMAGES_DIR}/{SPLIT_NAMES[reader.split_codes[i]]}/"
        f"{reader.class_names[reader.labels[i]]}/{i:0{width}d}.fits"
        for i in rows
    ]
    prepare_out_dir(out_dir, overwrite)
    write_marker(out_dir, schema, [*relative, CATALOG])
    for folder in sorted({str(Path(r).parent) for r in relative}):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    for start in range(0, rows.size, BLOCK):
        block = rows[start : start + BLOCK]
        for offset, image in enumerate(reader.images(block)):
            row = int(block[offset])
            pixels = image[0] if image.shape[0] == 1 else image
            hdu = fits.PrimaryHDU(data=pixels.astype(">f4"), header=_header(fits, reader, row))
            hdu.writeto(out_dir / relative[start + offset])
    _catalog(fits, reader, rows, relative, schema).writeto(out_dir / CATALOG)
    card = dataset_card(
        layout="fits",
        title=f"darklens {schema.manifest.get('preset') or schema.manifest.get('source', '')}",
        image_shape=schema.image_shape,
        class_names=schema.class_names,
        labels=reader.labels[rows],
        split_codes=reader.split_codes[rows],
        manifest=schema.manifest,
        truth=schema.truth_columns,
        inputs=schema.extra_inputs,
        license=license or default_license(schema.manifest),
    )
    (out_dir / CARD).write_text(card, encoding="utf-8")
    return int(rows.size)


def _header(fits: Any, reader: DatasetReader, row: int) -> Any:
    """The cutout's header: pixel scale, bands, class, split and provenance."""
    manifest = reader.manifest
    header = fits.Header()
    header["ORIGIN"] = ("darklens", "written by darklens export --layout fits")
    header["DLVERSN"] = (__version__, "darklens version")
    header["DLINDEX"] = (row, "index of the image in the darklens dataset")
    header["CLASS"] = reader.class_names[reader.labels[row]]
    header["LABEL"] = (int(reader.labels[row]), "class index")
    header["SPLIT"] = SPLIT_NAMES[reader.split_codes[row]]
    for key, field in (("PRESET", "preset"), ("DLSEED", "seed")):
        if manifest.get(field) is not None:
            header[key] = manifest[field]
    if manifest.get("pixel_scale_arcsec") is not None:
        header["PIXSCALE"] = (float(manifest["pixel_scale_arcsec"]), "[arcsec/pixel]")
    bands = manifest.get("band_names") or []
    if len(bands) == 1:
        header["FILTER"] = (str(bands[0]), "band")
    elif bands:
        header["NBANDS"] = (len(bands), "bands along the first axis of the cube")
        for number, band in enumerate(bands, start=1):
            header[f"BAND{number}"] = (str(band), f"band of plane {number}")
    if manifest.get("image_units"):
        header["IMGUNITS"] = str(manifest["image_units"])
    return header


def _catalog(
    fits: Any, reader: DatasetReader, rows: np.ndarray, files: list[str], schema: Schema
) -> Any:
    from astropy.table import Table

    table = Table()
    table["INDEX"] = rows.astype(np.int64)
    table["FILE"] = files
    table["LABEL"] = reader.labels[rows].astype(np.int64)
    table["SPLIT"] = [SPLIT_NAMES[c] for c in reader.split_codes[rows]]
    for name, _, dtype in schema.truth_columns:
        values = reader.truth(name)[rows]
        # astropy writes 1-byte integers as FITS logicals: widen them (the schema keeps the type)
        table[name] = (
            values.astype(np.int16)
            if np.dtype(dtype).kind in "iu" and values.itemsize == 1
            else values
        )
    for name, _ in schema.extra_inputs:
        table[f"INPUT_{name}"] = reader.inputs(name, rows).astype(np.float32)
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "darklens"
    primary.header["DLVERSN"] = __version__
    return fits.HDUList([primary, fits.table_to_hdu(table)])


# -- import --------------------------------------------------------------------------------------
def import_fits(
    folder: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> tuple[Path, Schema]:
    """Write a FITS export back into a dataset file; returns the file and the export's schema."""
    folder = Path(folder)
    schema, listed = read_marker(folder)
    if schema.layout != "fits":
        raise ExchangeError(f"{folder} holds a {schema.layout} export, not FITS cutouts")
    table = _read_catalog(folder / CATALOG, schema)
    files = [str(f) for f in table["FILE"]]
    outside = sorted(set(files) - set(listed))
    if outside:
        raise ExchangeError(f"{CATALOG} names files the export did not write: {outside[:3]}")
    importer = RowImporter(out, schema, np.asarray(table["INDEX"], dtype=np.int64), overwrite)
    advance = stage_counter(progress, "importing images", len(table))
    try:
        for start in range(0, len(table), BLOCK):
            block = table[start : start + BLOCK]
            importer.write(_rows(folder, block, schema))
            advance(len(block))
    except BaseException:
        importer.abort()
        raise
    return importer.close(), schema


def _read_catalog(path: Path, schema: Schema) -> Any:
    from astropy.table import Table

    try:
        table = Table.read(path, hdu=1, character_as_bytes=False)
    except Exception as err:  # astropy raises OSError, ValueError, KeyError... when damaged
        raise ExchangeError(f"{path}: not a readable FITS catalogue ({err})") from None
    needed = ["INDEX", "FILE", "LABEL", "SPLIT", *(n for n, _, _ in schema.truth_columns)]
    needed += [f"INPUT_{n}" for n, _ in schema.extra_inputs]
    missing = [name for name in needed if name not in table.colnames]
    if missing:
        raise ExchangeError(f"{path} lacks the column(s) {missing}")
    return table


def _image(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdus:
            data = hdus[0].data
    except Exception as err:  # damaged or missing files
        raise ExchangeError(f"{path}: not a readable FITS image ({err})") from None
    if data is None or data.dtype.kind != "f":
        raise ExchangeError(f"{path}: expected float pixels in the primary HDU")
    image = np.asarray(data, dtype=np.float32)
    if image.ndim == 2:
        image = image[None]
    if image.shape != shape:
        raise ExchangeError(f"{path}: image of shape {image.shape}, the export's are {shape}")
    return image


def _rows(folder: Path, block: Any, schema: Schema) -> Rows:
    splits = [str(s).strip() for s in block["SPLIT"]]
    unknown = set(splits) - set(SPLIT_NAMES)
    if unknown:
        raise ExchangeError(f"{CATALOG}: unknown split name(s) {sorted(unknown)}")
    images = [_image(folder / str(f), schema.image_shape) for f in block["FILE"]]
    return Rows(
        index=np.asarray(block["INDEX"], dtype=np.int64),
        images=np.stack(images),
        labels=np.asarray(block["LABEL"], dtype=np.int64),
        split_codes=np.array([SPLIT_NAMES.index(s) for s in splits], dtype=np.uint8),
        truth=_columns(block, {n: (s, d) for n, s, d in schema.truth_columns}, ""),
        inputs=_columns(block, {n: (s, "float32") for n, s in schema.extra_inputs}, "INPUT_"),
    )


def _columns(block: Any, spec: Mapping[str, tuple[tuple[int, ...], str]], prefix: str) -> dict:
    out = {}
    for name, (shape, dtype) in spec.items():
        values = np.asarray(block[f"{prefix}{name}"])
        if values.shape[1:] != shape:
            raise ExchangeError(
                f"{CATALOG}: column {prefix}{name} has shape {values.shape[1:]}, expected {shape}"
            )
        out[name] = values.astype(dtype)
    return out
