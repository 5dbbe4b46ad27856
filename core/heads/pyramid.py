"""ViTDet's simple feature pyramid: four scales from a plain ViT's last map.

A plain ViT keeps one stride (its patch size) at every depth, but FPN-style decoders want maps at
several strides. ViTDet (Li et al., 2022) showed that building them from the last map alone is
enough: two stride-2 deconvolutions (x4), one (x2), the map itself (x1) and a 2x2 max-pool (x0.5).
"""

from __future__ import annotations

import torch
from timm.layers import LayerNorm2d
from torch import nn

from ..towers.base import LevelSpec


class SimpleFeaturePyramid(nn.Module):
    """(B, C, h, w) at stride s -> maps at strides s/4, s/2, s, 2s with C/4, C/2, C, C channels."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        quarter, half = max(1, channels // 4), max(1, channels // 2)
        self.up4 = nn.Sequential(
            nn.ConvTranspose2d(channels, half, kernel_size=2, stride=2),
            LayerNorm2d(half),
            nn.GELU(),
            nn.ConvTranspose2d(half, quarter, kernel_size=2, stride=2),
        )
        self.up2 = nn.ConvTranspose2d(channels, half, kernel_size=2, stride=2)
        self.down2 = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.specs = [LevelSpec(quarter, max(1, stride // 4)), LevelSpec(half, max(1, stride // 2)),
                      LevelSpec(channels, stride), LevelSpec(channels, stride * 2)]

    def forward(self, last: torch.Tensor) -> list[torch.Tensor]:
        return [self.up4(last), self.up2(last), last, self.down2(last)]
