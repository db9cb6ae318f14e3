"""darklens: deep learning on strong gravitational lensing data.

Subpackages load on first use, so ``import darklens`` stays light and
``darklens.simulate("model_ii", n_per_class=100, seed=0)`` works after it alone.
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType

try:
    __version__ = version("darklens")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

# Subpackages reachable as attributes of ``darklens`` without importing them first.
_SUBPACKAGES = frozenset(
    {"data", "evaluate", "lightning", "models", "predict", "recipes", "simulate", "train"}
)


def __getattr__(name: str) -> ModuleType:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
