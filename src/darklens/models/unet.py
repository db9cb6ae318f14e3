"""U-Net (Ronneberger, Fischer & Brox 2015, MICCAI, arXiv:1505.04597) for image-to-image tasks.

As in the paper: an encoder of double 3×3 convolutions with 2×2 max pooling (channels doubling at
each level), a decoder of 2×2 up-convolutions whose output is concatenated with the encoder's
feature map of the same level (skip connections), double 3×3 convolutions, and a final 1×1
convolution. Changed for lensing images: 'same' padding (the paper crops instead) and batch
normalisation after each convolution; inputs of any size are reflect-padded to a multiple of
2^depth and the output cropped back, so the output has the input's shape; the network predicts a
residual added to the input (``residual=True``), so an untrained U-Net starts near the identity.

Sizes: ``small`` (width 16, depth 3, ~0.5M parameters) and ``base`` (width 32, depth 4, ~7.8M).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darklens.models import register_model

SIZES = {"small": (16, 3), "base": (32, 4)}


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """[B, in_chans, H, W] → [B, out_chans, H, W] for any H, W ≥ 1."""

    def __init__(
        self, in_chans: int, out_chans: int, width: int = 32, depth: int = 4, residual: bool = True
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"U-Net needs depth >= 1 and width >= 1, got {depth}, {width}")
        if residual and in_chans != out_chans:
            raise ValueError("a residual U-Net needs as many output as input channels")
        self.depth, self.residual = depth, residual
        channels = [width * 2**level for level in range(depth + 1)]
        self.down = nn.ModuleList(
            [double_conv(in_chans, channels[0])]
            + [double_conv(channels[k], channels[k + 1]) for k in range(depth)]
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(channels[k + 1], channels[k], 2, stride=2)
            for k in reversed(range(depth))
        )
        self.merge = nn.ModuleList(
            double_conv(2 * channels[k], channels[k]) for k in reversed(range(depth))
        )
        self.out = nn.Conv2d(channels[0], out_chans, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        skips = []
        h = padded
        for level, block in enumerate(self.down):
            h = block(h)
            if level < self.depth:
                skips.append(h)
                h = F.max_pool2d(h, 2)
        for up, merge in zip(self.up, self.merge, strict=True):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        out = self.out(h)[..., :height, :width]
        return x + out if self.residual else out


@register_model("unet", min_img_size=1, first_conv="down.0.0", classifier=None, output="image")
def unet(
    in_chans: int,
    num_classes: int,
    img_size: int,
    size: str = "base",
    residual: bool = True,
) -> nn.Module:
    """U-Net for denoising (``num_classes`` = output channels, usually ``in_chans``); sizes
    ``small`` / ``base``; any image size (padded to a multiple of 2^depth inside)."""
    if size not in SIZES:
        raise ValueError(f"unet size must be one of {sorted(SIZES)}, got {size!r}")
    width, depth = SIZES[size]
    return UNet(in_chans, num_classes, width=width, depth=depth, residual=residual)
