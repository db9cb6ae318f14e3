"""Datasets: the dataset file, in-memory datasets, PyTorch datasets, importers and exporters
of community formats, transforms and preprocessing.

The names below load on first use (``TorchLensDataset`` imports torch), so importing one module
of this package stays light.
"""

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "DatasetWriter": "darklens.data.h5",
    "LensDataset": "darklens.data.h5",
    "InMemoryDataset": "darklens.data.memory",
    "open_dataset": "darklens.data.memory",
    "TorchLensDataset": "darklens.data.torch_dataset",
    "ImagePreprocess": "darklens.data.torch_dataset",
    "export_parquet": "darklens.data.exchange",
    "export_fits": "darklens.data.exchange",
    "import_exchange": "darklens.data.exchange",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
