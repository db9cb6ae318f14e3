"""Model zoo: ``create_model(name, in_chans, num_classes, img_size, **kw)`` and ``list_models``.

Each architecture family lives in its own module and registers constructors with
:func:`register_model`. Constructors take ``in_chans``, ``num_classes`` and ``img_size`` (an int,
square images) plus their own keyword arguments, and return an ``nn.Module`` mapping
``[B, in_chans, img_size, img_size]`` float tensors to ``[B, num_classes]`` logits.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from darklens.registry import Registry

ModelFn = Callable[..., nn.Module]
MODELS: Registry[ModelFn] = Registry("model")


def register_model(name: str | None = None) -> Callable[[ModelFn], ModelFn]:
    return MODELS.register(name)


def create_model(
    name: str, in_chans: int = 1, num_classes: int = 3, img_size: int = 64, **kwargs
) -> nn.Module:
    """Build a registered model; unknown names raise KeyError listing the known ones."""
    _load_families()
    if in_chans < 1 or num_classes < 1 or img_size < 8:
        raise ValueError(
            f"need in_chans >= 1, num_classes >= 1 and img_size >= 8; got {in_chans}, "
            f"{num_classes}, {img_size}"
        )
    return MODELS.get(name)(in_chans=in_chans, num_classes=num_classes, img_size=img_size, **kwargs)


def list_models(pattern: str = "*") -> list[str]:
    _load_families()
    return MODELS.names(pattern)


_FAMILIES = ("baselines",)
_loaded = False


def _load_families() -> None:
    """Import the architecture modules (lazily: timm is slow to import)."""
    global _loaded
    if _loaded:
        return
    import importlib

    for family in _FAMILIES:
        importlib.import_module(f"darklens.models.{family}")
    _loaded = True
