"""Model zoo: ``create_model(name, in_chans, num_classes, img_size, **kw)`` and ``list_models``.

Each architecture family lives in its own module and registers constructors with
:func:`register_model`. Constructors take ``in_chans``, ``num_classes`` and ``img_size`` (an int,
square images, pixels) plus their own keyword arguments, and return an ``nn.Module`` mapping
``[B, in_chans, img_size, img_size]`` float tensors to ``[B, num_classes]`` logits.

Models may take more inputs per example than the image (e.g. light curves of lensed transients):
they register with ``inputs=("images", "light_curves", ...)``, their constructors receive
``input_shapes`` (``{name: shape of one example}`` for every input after ``images``), and their
``forward`` takes the inputs positionally in that order: ``model(images, light_curves)``.
:func:`model_inputs` tells callers (trainer, predictor) what to feed.

Families: ``baselines`` (deeplense_cnn, lastro_cnn), ``cbam`` (resnet18_cbam), ``cmu_deeplens``,
``timm_zoo`` (resnet18/34, efficientnet_b0, convnextv2_*, vit_tiny, swin_tiny), and for lensed
transients (images + light curves) ``transients`` (cnn_lstm, lonet, munet, glonet) and
``stacking`` (deepgravilens: an SVM on the members' probabilities). The name
``default`` is an alias of :data:`DEFAULT_ARCHITECTURE`, darklens's recommended starting point.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from darklens.models._checks import require_img_size
from darklens.models.pretrained import LoadReport, load_pretrained
from darklens.registry import Registry

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "FITS",
    "IMAGES",
    "MODEL_ALIASES",
    "LoadReport",
    "ModelEntry",
    "create_model",
    "list_models",
    "load_pretrained",
    "model_entry",
    "model_fit",
    "model_inputs",
    "register_model",
    "resolve_model_name",
]

logger = logging.getLogger(__name__)

ModelFn = Callable[..., nn.Module]
IMAGES = "images"
FITS = ("backprop", "stack")
OUTPUTS = ("logits", "image")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its constructor and what callers need to know about it.

    - ``inputs``: what ``forward`` takes, in order (images first);
    - ``min_img_size`` / ``img_size_multiple``: image sizes (px) the architecture accepts;
    - ``first_conv``: module path of the convolution that sees the image (its input channels are
      adapted when loading pretrained weights with another channel count), None if there is none;
    - ``classifier``: module path of the classifier head (skipped when pretrained weights were
      made for another number of classes), None when the model has no trainable head;
    - ``fit``: ``backprop`` (trained by :func:`darklens.train.train`) or ``stack`` (members
      trained separately, then a head fitted on their outputs: :mod:`darklens.recipes.stack`);
    - ``output``: ``logits`` ([B, num_classes]: classes, or regression targets) or ``image``
      ([B, num_classes, H, W], image-to-image models such as the denoising U-Net).
    """

    name: str
    constructor: ModelFn
    inputs: tuple[str, ...] = (IMAGES,)
    min_img_size: int = 16
    img_size_multiple: int = 1
    first_conv: str | None = None
    classifier: str | None = None
    fit: str = "backprop"
    output: str = "logits"


MODELS: Registry[ModelEntry] = Registry("model")

# The darklens default, to be confirmed by a training benchmark (macro AUC per CPU-minute on
# 64×64×1 substructure images). bench/bench_models.py, 1 thread, batch 64, 64 px: resnet18 trains
# at ~100 images per CPU-second (convnextv2_atto ~125, resnet18_cbam ~87, efficientnet_b0 ~89,
# convnextv2_pico ~67). Picked over the slightly faster ConvNeXt-atto because ResNet-18 is the
# established strong baseline on DeepLense substructure data, converges quickly from scratch
# with BN and SGD/Adam, and has standard ImageNet weights that load_pretrained adapts to 1 channel.
DEFAULT_ARCHITECTURE = "resnet18"
MODEL_ALIASES: dict[str, str] = {"default": DEFAULT_ARCHITECTURE}

_FAMILIES = ("baselines", "cbam", "cmu_deeplens", "timm_zoo", "transients", "stacking", "unet")
_loaded = False


def register_model(
    name: str | None = None,
    *,
    inputs: Sequence[str] = (IMAGES,),
    min_img_size: int = 16,
    img_size_multiple: int = 1,
    first_conv: str | None = None,
    classifier: str | None = None,
    fit: str = "backprop",
    output: str = "logits",
) -> Callable[[ModelFn], ModelFn]:
    """Decorator: register a model constructor under ``name`` (default: the function's name),
    with the metadata of :class:`ModelEntry`.

    ``inputs`` names what ``forward`` takes, in order; the first is always ``images``, the others
    are a dataset's extra inputs (``/inputs/<name>`` in a darklens file).
    """
    inputs = tuple(inputs)
    if not inputs or inputs[0] != IMAGES or len(set(inputs)) != len(inputs):
        raise ValueError(f"model inputs must start with {IMAGES!r} and not repeat, got {inputs}")
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")

    def decorate(constructor: ModelFn) -> ModelFn:
        key = name or constructor.__name__
        MODELS.add(
            key,
            ModelEntry(
                key, constructor, inputs, min_img_size, img_size_multiple, first_conv,
                classifier, fit, output,
            ),
        )  # fmt: skip
        return constructor

    return decorate


def model_entry(name: str) -> ModelEntry:
    """The registry entry of model ``name`` (aliases resolved); KeyError with close matches."""
    _load_families()
    MODELS.get(name)  # unknown names raise with close matches, aliases included
    return MODELS.get(resolve_model_name(name))


def model_inputs(name: str) -> tuple[str, ...]:
    """The inputs that model ``name`` takes, in ``forward`` order (``("images",)`` for most)."""
    return model_entry(name).inputs


def model_fit(name: str) -> str:
    """How model ``name`` is fitted: ``backprop`` or ``stack`` (see :class:`ModelEntry`)."""
    return model_entry(name).fit


def resolve_model_name(name: str) -> str:
    """The architecture that ``name`` builds (aliases such as ``default`` resolved)."""
    return MODEL_ALIASES.get(name, name)


def create_model(
    name: str,
    in_chans: int = 1,
    num_classes: int = 3,
    img_size: int = 64,
    *,
    pretrained: bool | str | Path | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model, optionally loading a local weights file.

    ``input_shapes`` gives the per-example shape of each extra input a multi-input model takes
    (see :func:`model_inputs`); it is required for those models and ignored by image-only ones.

    ``pretrained`` is a path to a ``.safetensors``/``.pth`` file (see :func:`load_pretrained`);
    ``True`` is refused because the model hub is unreachable here. Unknown names raise KeyError
    listing close matches.
    """
    entry = model_entry(name)
    if in_chans < 1 or num_classes < 1 or img_size < 8:
        raise ValueError(
            f"need in_chans >= 1, num_classes >= 1 and img_size >= 8; got {in_chans}, "
            f"{num_classes}, {img_size}"
        )
    if pretrained is True:
        raise ValueError(
            f"pretrained=True would download {name!r} weights from the model hub, which is "
            "unreachable here; pass pretrained=PATH to a local .safetensors or .pth file"
        )
    require_img_size(entry.name, img_size, entry.min_img_size, entry.img_size_multiple)
    extras = entry.inputs[1:]
    if extras:
        shapes = dict(input_shapes or {})
        missing = [n for n in extras if n not in shapes]
        if missing:
            raise ValueError(
                f"model {name!r} takes inputs {(IMAGES, *extras)}; give the shape of one "
                f"example of {', '.join(missing)} in input_shapes"
            )
        kwargs["input_shapes"] = {n: tuple(int(d) for d in shapes[n]) for n in extras}
    model = entry.constructor(
        in_chans=in_chans, num_classes=num_classes, img_size=img_size, **kwargs
    )
    if pretrained is not None and pretrained is not False:
        report = load_pretrained(
            model, pretrained, first_conv=entry.first_conv, classifier=entry.classifier
        )
        logger.info(report.summary())
    return model


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    _load_families()
    return MODELS.names(pattern)


def _alias(alias: str, target: str) -> ModelEntry:
    """An entry that builds ``target`` under another name (resolved when families load)."""

    def build(in_chans: int, num_classes: int, img_size: int, **kwargs) -> nn.Module:
        return MODELS.get(target).constructor(
            in_chans=in_chans, num_classes=num_classes, img_size=img_size, **kwargs
        )

    build.__doc__ = f"Alias of {target!r}."
    return ModelEntry(alias, build)


for _alias_name, _target in MODEL_ALIASES.items():
    MODELS.add(_alias_name, _alias(_alias_name, _target))


def _load_families() -> None:
    """Import the architecture modules (lazily: timm is slow to import)."""
    global _loaded
    if _loaded:
        return
    for family in _FAMILIES:
        importlib.import_module(f"darklens.models.{family}")
    _loaded = True
