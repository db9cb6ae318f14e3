"""CMU DeepLens (Lanusse et al. 2018, MNRAS 473, 3895): a pre-activated bottleneck ResNet.

Layout followed: a 7×7 convolution with 32 feature maps (batch norm, ELU) on the full-resolution
image, then 5 stages of 3 pre-activated bottleneck units (He et al. 2016: BN → ELU → 1×1 → BN →
ELU → 3×3 → BN → ELU → 1×1, bottleneck width a quarter of the unit's output) with 32, 64, 128, 256
and 512 output channels; every stage after the first halves the resolution in its first unit.
A final BN → ELU, a global average pool and a linear layer give ``num_classes`` logits (the
original has a single sigmoid output for lens / non-lens).
"""

from __future__ import annotations

import torch
from torch import nn

from darklens.models import register_model

STAGE_WIDTHS = (32, 64, 128, 256, 512)
UNITS_PER_STAGE = 3


class PreActBottleneck(nn.Module):
    """Pre-activated bottleneck unit; a strided 1×1 projection shortcut when the shape changes."""

    def __init__(self, in_chans: int, width: int, stride: int) -> None:
        super().__init__()
        mid = width // 4
        self.preact = nn.Sequential(nn.BatchNorm2d(in_chans), nn.ELU(inplace=True))
        self.residual = nn.Sequential(
            nn.Conv2d(in_chans, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ELU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ELU(inplace=True),
            nn.Conv2d(mid, width, 1, bias=False),
        )
        self.projection: nn.Module | None = None
        if stride != 1 or in_chans != width:
            self.projection = nn.Conv2d(in_chans, width, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.preact(x)
        shortcut = x if self.projection is None else self.projection(activated)
        return self.residual(activated) + shortcut


class CMUDeepLens(nn.Module):
    """Stem, five stages of bottleneck units, pooled linear head."""

    def __init__(self, in_chans: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, STAGE_WIDTHS[0], 7, padding=3, bias=False),
            nn.BatchNorm2d(STAGE_WIDTHS[0]),
            nn.ELU(inplace=True),
        )
        units: list[nn.Module] = []
        channels = STAGE_WIDTHS[0]
        for index, width in enumerate(STAGE_WIDTHS):
            for unit in range(UNITS_PER_STAGE):
                stride = 2 if index > 0 and unit == 0 else 1
                units.append(PreActBottleneck(channels, width, stride))
                channels = width
        self.units = nn.Sequential(*units)
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ELU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.units(self.stem(x)))


@register_model("cmu_deeplens", min_img_size=16, first_conv="stem.0", classifier="head.4")
def cmu_deeplens(in_chans: int, num_classes: int, img_size: int) -> nn.Module:
    """CMU DeepLens ResNet (~1.3M parameters); works for images of 16 px and up."""
    return CMUDeepLens(in_chans, num_classes)
