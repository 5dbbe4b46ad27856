"""UPerNet (Xiao et al., 2018): a pyramid pooling module on the coarsest map, FPN fusion of the
others, all resized to the finest level and fused - segmentation_models_pytorch's decoder.

smp's decoder indexes an encoder's full feature list, whose first two entries are the stride-1
and stride-2 maps it skips; the head passes two placeholders there and our levels after them.
Its lateral blocks resize by target size, so any strides and odd grids work.
"""

from __future__ import annotations

from typing import Sequence

import torch
from segmentation_models_pytorch.decoders.upernet.decoder import UPerNetDecoder
from torch import nn

from ..errors import ConfigError
from ..registry import HEADS

SKIPPED = 2  # smp's decoder drops the first two entries of the encoder's feature list


@HEADS.register_module()
class UPerNetHead(nn.Module):
    def __init__(self, in_channels: Sequence[int], strides: Sequence[int], num_classes: int,
                 channels: int = 128, norm: str = "batchnorm", dropout: float = 0.1):
        super().__init__()
        if len(in_channels) < 2:
            raise ConfigError(f"UPerNetHead needs at least 2 levels, got {len(in_channels)}")
        # norm: smp's choices; "batchnorm" (the paper's) needs >= 2 samples per training batch
        # because the pyramid pooling module normalises 1x1 pooled maps.
        self.decoder = UPerNetDecoder(encoder_channels=[1] * SKIPPED + list(in_channels),
                                      encoder_depth=len(in_channels) + 1,
                                      decoder_channels=channels, use_norm=norm)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        fused = self.decoder([None] * SKIPPED + list(levels))
        return self.classifier(self.dropout(fused))
