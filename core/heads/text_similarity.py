"""Open-vocabulary segmentation logits: patch embeddings against class-prompt text embeddings.

MaskCLIP (Zhou et al., 2022) showed that a CLIP image tower's patch tokens, put through the
pooled features' projection, land in the joint image-text space; the similarity of each patch to
each class prompt is then a segmentation logit. Fine-tuning learns the temperature (and, through
the model, the towers and projections it leaves trainable).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import HEADS


@HEADS.register_module()
class TextSimilarityHead(nn.Module):
    #: the model gives this head (patch_embeds, class_embeds) instead of multi-level maps
    needs_text = True

    def __init__(self, in_channels=None, strides=None, num_classes=None, temperature: float = 0.07,
                 max_logit_scale: float = 100.0):
        super().__init__()
        # shape (1,), not (): FSDP2 cannot shard 0-d parameters
        self.logit_scale = nn.Parameter(torch.tensor([math.log(1.0 / temperature)]))
        self.max_logit_scale = max_logit_scale

    def forward(self, patch_embeds: torch.Tensor, class_embeds: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) and (K, D), both L2-normalised -> (B, K, h, w) scaled cosine similarity."""
        scale = self.logit_scale.exp().clamp(max=self.max_logit_scale)
        return torch.einsum("bdhw,kd->bkhw", patch_embeds, class_embeds.to(patch_embeds.dtype)) * scale
