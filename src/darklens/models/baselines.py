"""Plain-CNN community baselines, written from their papers' and notebooks' descriptions.

* ``deeplense_cnn`` — the DeepLense seed-notebook baseline: four conv blocks (32-64-128-256, each
  conv → BN → ReLU → 2×2 max-pool → dropout), a 512-unit dense layer, then the classifier.
* ``lastro_cnn`` — the LASTRO EPFL lens finder of Schaefer et al. 2018 (A&A 611, A2), winner of the
  space-based Bologna lens-finding challenge.
"""

from __future__ import annotations

from torch import nn

from darklens.models import register_model


def _conv_block(in_chans: int, width: int, dropout: float) -> list[nn.Module]:
    return [
        nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout(dropout),
    ]


@register_model("deeplense_cnn", min_img_size=16, first_conv="0", classifier="25")
def deeplense_cnn(
    in_chans: int, num_classes: int, img_size: int, dropout: float = 0.25
) -> nn.Module:
    """DeepLense seed-notebook CNN (~2.5M parameters).

    The notebook flattens the 4×4×256 map it gets from 64-px images into the 512-unit layer; an
    adaptive average pool to 4×4 keeps exactly that layer (an identity at 64 px) for any size.
    """
    layers: list[nn.Module] = []
    channels = in_chans
    for width in (32, 64, 128, 256):
        layers += _conv_block(channels, width, dropout)
        channels = width
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(channels * 16, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(512, num_classes),
    )


def _same_conv(in_chans: int, width: int, kernel: int, bias: bool = True) -> list[nn.Module]:
    """A stride-1 convolution padded to keep the size (odd or even kernel, padding extra at end)."""
    before = (kernel - 1) // 2
    after = kernel - 1 - before
    return [
        nn.ZeroPad2d((before, after, before, after)),
        nn.Conv2d(in_chans, width, kernel, bias=bias),
    ]


def _lastro_pair(in_chans: int, width: int, first_kernel: int) -> list[nn.Module]:
    """Two convolutions, the second followed by batch norm (Schaefer et al. 2018, Table 1)."""
    return [
        *_same_conv(in_chans, width, first_kernel),
        nn.ReLU(inplace=True),
        *_same_conv(width, width, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]


@register_model("lastro_cnn", min_img_size=32, first_conv="1", classifier="45")
def lastro_cnn(in_chans: int, num_classes: int, img_size: int, dropout: float = 0.5) -> nn.Module:
    """LASTRO EPFL lens finder (Schaefer et al. 2018): 8 conv + 4 dense layers, ~5.7M parameters.

    What we followed: conv pairs of 16 (first kernel 4×4), 32, 64 and 128 feature maps, each pair
    ending in batch norm, 2×2 max-pooling after the first three pairs, dropout before and after
    the last pair, then three 1024-unit dense layers (batch norm on the last two, dropout between
    them) and the output layer (there a single sigmoid unit; here ``num_classes`` logits).
    The paper ran valid (unpadded) convolutions on 101×101 images, which leave a 5×5×128 map
    and give the quoted ~5.7M parameters. We pad ('same') so that images down to 32 px work, and
    adaptive-average-pool to 5×5 before the dense layers, which keeps their size for any input.
    """
    return nn.Sequential(
        *_lastro_pair(in_chans, 16, first_kernel=4),
        nn.MaxPool2d(2),
        *_lastro_pair(16, 32, first_kernel=3),
        nn.MaxPool2d(2),
        *_lastro_pair(32, 64, first_kernel=3),
        nn.MaxPool2d(2),
        nn.Dropout(dropout),
        *_lastro_pair(64, 128, first_kernel=3),
        nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(5),
        nn.Flatten(),
        nn.Linear(128 * 25, 1024),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(1024, 1024, bias=False),
        nn.BatchNorm1d(1024),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(1024, 1024, bias=False),
        nn.BatchNorm1d(1024),
        nn.ReLU(inplace=True),
        nn.Linear(1024, num_classes),
    )
