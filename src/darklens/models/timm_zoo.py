"""Modern backbones built by timm (never re-implemented here), always with random weights.

Pretrained weights can't be fetched from the model hub on darklens machines; load a local file
with ``create_model(..., pretrained=PATH)`` instead.

Small-image choices:

* ``vit_tiny`` — timm ``vit_tiny_patch16_224`` at ``img_size``. The default patch side is the
  divisor of ``img_size`` between 4 and 16 px closest to ``img_size / 8``, so an image becomes
  about 8×8 tokens with no pixel dropped (8 px for 64-px images, 15 px for 150, 16 px for 224).
* ``swin_tiny`` — timm ``swin_tiny_patch4_window7_224`` at ``img_size``; ``img_size`` must be a
  multiple of 32 (4-px patches, then three 2× merges) and the window is the largest side ≤ 7 that
  tiles every stage's feature map (stages smaller than a window attend globally): 4 at 64 px,
  7 at 224 px.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from darklens.models import register_model

# darklens name → timm architecture, for convolutional backbones that take any size >= 32 px.
TIMM_CNNS = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "efficientnet_b0": "efficientnet_b0",
    "convnextv2_atto": "convnextv2_atto",
    "convnextv2_femto": "convnextv2_femto",
    "convnextv2_pico": "convnextv2_pico",
    "convnextv2_nano": "convnextv2_nano",
    "convnextv2_tiny": "convnextv2_tiny",
}
VIT_ARCH = "vit_tiny_patch16_224"
SWIN_ARCH = "swin_tiny_patch4_window7_224"
SWIN_STRIDES = (4, 8, 16, 32)
SWIN_MAX_WINDOW = 7


def timm_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build a timm architecture with random weights (the hub is unreachable here)."""
    from darklens._compat import import_torchvision

    import_torchvision()
    import timm

    return timm.create_model(arch, pretrained=False, **kwargs)


# Module paths of each family's first convolution and classifier head (timm's pretrained_cfg
# ``first_conv`` / ``classifier`` for these architectures).
_TIMM_LAYERS = {
    "resnet": ("conv1", "fc"),
    "efficientnet": ("conv_stem", "classifier"),
    "convnextv2": ("stem.0", "head.fc"),
}


def _register_cnn(name: str, arch: str) -> None:
    def build(in_chans: int, num_classes: int, img_size: int, **kwargs: Any) -> nn.Module:
        return timm_model(arch, in_chans=in_chans, num_classes=num_classes, **kwargs)

    build.__name__ = name
    build.__doc__ = f"timm ``{arch}``; any ``img_size`` >= 32 px (it is only checked)."
    first_conv, classifier = next(v for k, v in _TIMM_LAYERS.items() if name.startswith(k))
    register_model(name, min_img_size=32, first_conv=first_conv, classifier=classifier)(build)


for _name, _arch in TIMM_CNNS.items():
    _register_cnn(_name, _arch)


def vit_patch_size(img_size: int) -> int:
    """Patch side (px) for ``vit_tiny``: the divisor of ``img_size`` in [4, 16] nearest size/8."""
    divisors = [p for p in range(4, 17) if img_size % p == 0]
    if not divisors:
        candidates = [s for s in range(max(img_size - 8, 32), img_size + 9) if _has_patch(s)]
        near = sorted(sorted(candidates, key=lambda s: abs(s - img_size))[:4])
        raise ValueError(
            f"vit_tiny: img_size {img_size} has no divisor between 4 and 16 to use as patch size; "
            f"crop or pad the images to one of {near}"
        )
    return min(divisors, key=lambda p: (abs(p - img_size / 8), p))


def _has_patch(img_size: int) -> bool:
    return any(img_size % p == 0 for p in range(4, 17))


@register_model("vit_tiny", min_img_size=32, first_conv="patch_embed.proj", classifier="head")
def vit_tiny(
    in_chans: int, num_classes: int, img_size: int, patch_size: int | None = None, **kwargs: Any
) -> nn.Module:
    """timm ViT-Tiny (5.5M parameters) with ``img_size`` set and a small-image patch size."""
    patch = vit_patch_size(img_size) if patch_size is None else patch_size
    if patch < 1 or img_size % patch:
        raise ValueError(
            f"vit_tiny: patch_size {patch} must divide img_size {img_size}, or the border pixels "
            "would be dropped; omit patch_size to pick one"
        )
    return timm_model(
        VIT_ARCH,
        in_chans=in_chans,
        num_classes=num_classes,
        img_size=img_size,
        patch_size=patch,
        **kwargs,
    )


def _window_tiles(img_size: int, window: int) -> bool:
    """True if a window of this side tiles every Swin stage (or covers a stage whole)."""
    resolutions = [img_size // stride for stride in SWIN_STRIDES]
    return all(r <= window or r % window == 0 for r in resolutions)


def swin_window_size(img_size: int) -> int:
    """Largest window side in [2, 7] that tiles every Swin stage of a ``img_size`` image."""
    if img_size % SWIN_STRIDES[-1] == 0:
        for window in range(SWIN_MAX_WINDOW, 1, -1):
            if _window_tiles(img_size, window):
                return window
    raise ValueError(
        f"swin_tiny: img_size {img_size} is not supported: it must be a multiple of 32 and its "
        "stage maps (img_size/4 ... img_size/32) must be tiled by one window of 2-7 tokens; "
        f"nearby valid sizes: {valid_swin_sizes(img_size)}"
    )


def valid_swin_sizes(near: int, count: int = 4) -> list[int]:
    """The ``count`` image sizes (px) closest to ``near`` that ``swin_tiny`` accepts."""
    candidates = [
        size
        for size in range(32, 2 * near + 33 * count, 32)
        if any(_window_tiles(size, w) for w in range(2, SWIN_MAX_WINDOW + 1))
    ]
    return sorted(sorted(candidates, key=lambda s: (abs(s - near), s))[:count])


@register_model("swin_tiny", min_img_size=32, first_conv="patch_embed.proj", classifier="head.fc")
def swin_tiny(
    in_chans: int, num_classes: int, img_size: int, window_size: int | None = None, **kwargs: Any
) -> nn.Module:
    """timm Swin-T (27.5M parameters) with ``img_size`` set and a window that tiles its stages."""
    window = swin_window_size(img_size)
    if window_size is not None:
        if window_size < 1 or not _window_tiles(img_size, window_size):
            raise ValueError(
                f"swin_tiny: window_size {window_size} does not tile the stage maps of a "
                f"{img_size}-px image; omit window_size to use {window}"
            )
        window = window_size
    return timm_model(
        SWIN_ARCH,
        in_chans=in_chans,
        num_classes=num_classes,
        img_size=img_size,
        window_size=window,
        **kwargs,
    )
