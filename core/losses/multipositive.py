"""MultiPositiveLoss: InfoNCE with soft targets for multi-label data (MedCLIP / DeViDe style).

In a batch of chest X-rays, two "pneumonia" images make each other's reports valid positives too;
plain CLIP would push them apart. The positive weight of pair (i, j) is the cosine similarity of
the multi-hot label vectors ``batch["labels"]`` (1 for the same label set, partial for an
overlap, 0 for disjoint sets), the diagonal is always 1, and each row of targets is normalised
to sum to 1. Samples without any label (all zeros) only match their own text.

With no labels in the batch, or one-hot labels of distinct classes, the targets are the identity
and the loss is exactly :class:`CLIPLoss`.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..distributed import gather_features, gather_sizes, shard_offset, world_info
from ..registry import LOSSES
from .base import PairLoss, full_precision


def positive_weights(labels: torch.Tensor | None, rows: int, offset: int, total: int, device) -> torch.Tensor:
    """(rows, total) pair weights for rows ``offset .. offset+rows`` of a batch of ``total``."""
    weights = torch.zeros(rows, total, device=device)
    if labels is not None:
        unit = F.normalize(labels.float(), dim=-1)  # an all-zero row stays zero
        weights = unit[offset : offset + rows] @ unit.T
    index = torch.arange(rows, device=device)
    weights[index, index + offset] = 1.0
    return weights


def soft_cross_entropy(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum over rows of cross-entropy against the row-normalised ``weights``."""
    targets = weights / weights.sum(dim=1, keepdim=True)
    return -(targets * F.log_softmax(logits, dim=1)).sum()


@LOSSES.register_module()
class MultiPositiveLoss(PairLoss):
    name = "multipos"

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "text"),), gather_with_grad: bool = True):
        super().__init__(pairs)
        self.gather_with_grad = gather_with_grad

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        x, y = outputs["embeds"][a], outputs["embeds"][b]
        labels = batch.get("labels")
        with full_precision(x.device):
            x, y = x.float(), y.float()
            scale, bias = outputs["logit_scale"].float(), outputs.get("logit_bias")
            _, world = world_info()
            sizes = gather_sizes(x.shape[0], x.device)
            total, offset = sum(sizes), shard_offset(sizes)
            all_x = gather_features(x, self.gather_with_grad, sizes)
            all_y = gather_features(y, self.gather_with_grad, sizes)
            if labels is not None:
                labels = gather_features(labels.to(x.device), False, sizes)
            weights = positive_weights(labels, x.shape[0], offset, total, x.device)
            logits_xy = scale * x @ all_y.T
            logits_yx = scale * y @ all_x.T
            if bias is not None:
                logits_xy, logits_yx = logits_xy + bias.float(), logits_yx + bias.float()
            # The label similarity is symmetric, so the same weights serve both directions.
            loss = soft_cross_entropy(logits_xy, weights) + soft_cross_entropy(logits_yx, weights)
            return loss / 2 * world / total
