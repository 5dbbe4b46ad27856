"""A light FPN segmentation head (the semantic branch of Panoptic FPN, Kirillov et al., 2019).

Lateral 1x1 convolutions bring every level to one width, a top-down pass adds each coarser map
to the next finer one, a 3x3 convolution smooths each sum, and the smoothed maps are resized to
the finest level, summed and classified. Resizing goes by target size rather than a fixed x2, so
odd grids (a 48 px input through a stride-32 level) work.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if out_channels % g == 0)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.GroupNorm(groups, out_channels),  # batch-size independent: fine-tuning batches are small
        nn.ReLU(inplace=True),
    )


@HEADS.register_module()
class FPNHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], num_classes: int,
                 channels: int = 128, dropout: float = 0.1):
        super().__init__()
        self.strides = list(strides)
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_norm_act(channels, channels, 3) for _ in in_channels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(x) for conv, x in zip(self.lateral, levels)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: coarse into fine
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=laterals[i - 1].shape[-2:], mode="bilinear", align_corners=False)
        size = laterals[0].shape[-2:]
        fused = sum(F.interpolate(conv(x), size=size, mode="bilinear", align_corners=False)
                    for conv, x in zip(self.smooth, laterals))
        return self.classifier(self.dropout(fused))
