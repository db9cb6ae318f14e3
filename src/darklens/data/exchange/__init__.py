"""Dataset exchange: hand a darklens dataset to the Parquet / Hugging Face world or to FITS tools,
and take such an export back.

- :func:`export_parquet` (``darklens export FILE --layout parquet``, or ``hf``: the same files,
  laid out as a Hugging Face Hub dataset repository): Parquet shards per split + a dataset card;
  ``datasets.load_dataset("parquet", data_files=...)`` reads them.
- :func:`export_fits` (``--layout fits``): FITS cutouts with pixel scale and bands in their
  headers, a FITS catalogue and a dataset card.
- :func:`import_exchange` (``darklens import FOLDER``): either layout back into a dataset file;
  a whole export gives back the exported file byte for byte.

Examples:
    >>> import darklens
    >>> from darklens.data.exchange import export_parquet, import_exchange
    >>> data = darklens.simulate("model_ii", n_per_class=2, overrides={"instrument.num_pix": 16})
    >>> export_parquet(data, "m2_parquet")
    6
    >>> result = import_exchange("m2_parquet", "m2.h5")
    >>> result.layout, result.n_images
    ('parquet', 6)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from darklens.data.exchange.common import MARKER, ExchangeError, read_marker
from darklens.data.exchange.fits import export_fits, import_fits
from darklens.data.exchange.parquet import export_parquet, import_parquet
from darklens.data.h5 import LensDataset
from darklens.progress import Progress

__all__ = [
    "EXPORT_LAYOUTS",
    "ExchangeError",
    "ImportedExport",
    "detect_layout",
    "export_fits",
    "export_parquet",
    "import_exchange",
]

# layout name -> export function (``hf`` writes the Parquet layout, which is the Hub's)
EXPORT_LAYOUTS: dict[str, Callable[..., int]] = {
    "parquet": export_parquet,
    "hf": export_parquet,
    "fits": export_fits,
}


@dataclass(frozen=True)
class ImportedExport:
    """What :func:`import_exchange` wrote."""

    output: Path
    layout: str
    n_images: int
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]


def detect_layout(path: str | Path) -> str | None:
    """``parquet`` or ``fits`` when ``path`` is a darklens export (a folder with its
    ``darklens.json``, Parquet files, or one ``.parquet`` file); None otherwise."""
    path = Path(path)
    if path.is_file():
        return "parquet" if path.suffix.lower() == ".parquet" else None
    if not path.is_dir():
        return None
    if (path / MARKER).is_file():
        try:
            return read_marker(path)[0].layout
        except ExchangeError:
            return "parquet" if any(path.rglob("*.parquet")) else "fits"
    return "parquet" if any(path.rglob("*.parquet")) else None


def import_exchange(
    path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ImportedExport:
    """Import a Parquet/HF or FITS export (see :func:`detect_layout`) into a dataset file
    (``progress``: see :mod:`darklens.progress`)."""
    layout = detect_layout(path)
    if layout is None:
        raise ExchangeError(
            f"{path} is not a darklens export: expected a folder written by `darklens export "
            "--layout parquet|hf|fits` (with its darklens.json) or .parquet files"
        )
    importer = import_fits if layout == "fits" else import_parquet
    output, schema = importer(path, out, overwrite=overwrite, progress=progress)
    with LensDataset(output) as ds:
        counts = ds.counts()
        n = len(ds)
    return ImportedExport(output, layout, n, schema.class_names, counts)
