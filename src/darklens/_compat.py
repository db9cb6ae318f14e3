"""Import torchvision (and so timm/torchmetrics) on machines with a mismatched torchvision build.

PyPI ships torchvision 0.28 only as a CUDA build; next to a CPU-only torch its import fails with
``RuntimeError: operator torchvision::nms does not exist`` because the compiled ops are missing.
darklens never calls those detection ops, so when (and only when) that exact error appears we
register placeholder schemas for them and import again. Where torchvision imports normally this
module does nothing.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

_PLACEHOLDER_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library fragment alive
patched = False  # True once the placeholders were needed


def _purge_torchvision() -> None:
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]


def import_torchvision() -> ModuleType:
    """Import and return torchvision, registering placeholder ops only if the import needs them."""
    global _library, patched
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
    import torch

    _purge_torchvision()
    _library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _PLACEHOLDER_SCHEMAS.values():
        try:
            _library.define(schema)
        except RuntimeError:  # already defined by a partial import
            pass
    patched = True
    return importlib.import_module("torchvision")
