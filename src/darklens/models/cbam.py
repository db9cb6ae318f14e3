"""ResNet-18 with CBAM attention in every basic block (Woo et al. 2018, ECCV, arXiv:1807.06521).

CBAM refines a feature map first along channels — a shared two-layer MLP (reduction 16) applied
to the average- and max-pooled channel descriptors, summed, through a sigmoid — then along space —
a 7×7 convolution over the channel-wise average and max maps, through a sigmoid. As in the paper,
it acts on the residual branch of each block, just before the shortcut is added.
"""

from __future__ import annotations

import torch
from torch import nn

from darklens.models import register_model


class ChannelAttention(nn.Module):
    """Per-channel gates from avg- and max-pooled descriptors through a shared MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(logits)[:, :, None, None]


class SpatialAttention(nn.Module):
    """Per-pixel gates from a 7×7 conv over the channel-wise average and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(maps))


class CBAM(nn.Sequential):
    """Channel attention followed by spatial attention."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(ChannelAttention(channels, reduction), SpatialAttention())


class CBAMBasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs) with CBAM on the residual branch."""

    def __init__(self, in_chans: int, width: int, stride: int, reduction: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            CBAM(width, reduction),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != width:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chans, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.residual(x) + self.shortcut(x))


class ResNetCBAM(nn.Module):
    """ImageNet-style ResNet (7×7/2 stem, 3×3/2 max-pool, four stages) with CBAM blocks."""

    def __init__(
        self,
        in_chans: int,
        num_classes: int,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        reduction: int = 16,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        channels = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            units = []
            for unit in range(count):
                stride = 2 if index > 0 and unit == 0 else 1
                units.append(CBAMBasicBlock(channels, width, stride, reduction))
                channels = width
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


@register_model("resnet18_cbam", min_img_size=32, first_conv="stem.0", classifier="fc")
def resnet18_cbam(in_chans: int, num_classes: int, img_size: int, reduction: int = 16) -> nn.Module:
    """ResNet-18 (basic blocks [2, 2, 2, 2]) with CBAM in every block; ~11.3M parameters."""
    return ResNetCBAM(in_chans, num_classes, reduction=reduction)
