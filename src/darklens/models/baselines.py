"""Community baseline architectures, written from their papers' descriptions."""

from __future__ import annotations

from torch import nn

from darklens.models import register_model


@register_model("deeplense_cnn")
def deeplense_cnn(in_chans: int, num_classes: int, img_size: int, dropout: float = 0.25) -> nn.Module:
    """Four conv blocks (32-64-128-256; BN, ReLU, 2x2 max-pool, dropout) and a 512-unit FC head."""
    layers: list[nn.Module] = []
    channels = in_chans
    for width in (32, 64, 128, 256):
        layers += [
            nn.Conv2d(channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
        ]
        channels = width
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, 512),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(512, num_classes),
    )
