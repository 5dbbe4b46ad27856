"""CLIPLoss: symmetric InfoNCE over the global batch (Radford et al. 2021).

Gradients are exact under DDP: after the engine averages gradients over ranks (as DDP does), they
equal the gradient of the single-process loss on the concatenated batch, whichever mode is used,
except for ``local_loss=True, gather_with_grad=False`` (the cheap open_clip approximation, which
drops the gradient that other ranks' rows put on this rank's embeddings).

- default (``local_loss=False``): every rank builds the full N x N logits of the gathered batch.
- ``local_loss=True``: each rank builds only its B x N rows, O(B N) memory instead of O(N^2).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..distributed import gather_features, gather_sizes, scale_grad, shard_offset, world_info
from ..registry import LOSSES
from .base import PairLoss, full_precision


def add_bias(logits: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return logits if bias is None else logits + bias.float()


@LOSSES.register_module()
class CLIPLoss(PairLoss):
    name = "clip"

    def __init__(
        self,
        pairs: Iterable[Iterable[str]] = (("image", "text"),),
        local_loss: bool = False,
        gather_with_grad: bool = True,
    ):
        super().__init__(pairs)
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        x, y = outputs["embeds"][a], outputs["embeds"][b]
        with full_precision(x.device):
            x, y = x.float(), y.float()
            scale, bias = outputs["logit_scale"].float(), outputs.get("logit_bias")
            rank, world = world_info()
            if world == 1:
                logits = add_bias(scale * x @ y.T, bias)
                target = torch.arange(x.shape[0], device=x.device)
                return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2

            sizes = gather_sizes(x.shape[0], x.device)
            total = sum(sizes)
            if self.local_loss:
                all_x = gather_features(x, self.gather_with_grad, sizes)
                all_y = gather_features(y, self.gather_with_grad, sizes)
                target = torch.arange(x.shape[0], device=x.device) + shard_offset(sizes)
                per_row = F.cross_entropy(add_bias(scale * x @ all_y.T, bias), target, reduction="sum")
                per_col = F.cross_entropy(add_bias(scale * y @ all_x.T, bias), target, reduction="sum")
                # Scaled so that the mean over ranks (what DDP's gradient average sees) is the
                # global mean, also when ranks hold different batch sizes.
                return (per_row + per_col) / 2 * world / total

            if not self.gather_with_grad:
                # Every rank computes the same global loss but only its own copy reaches its
                # shard; counting it world times matches gather-with-grad's summed backward.
                x, y = scale_grad(x, world), scale_grad(y, world)
            all_x = gather_features(x, self.gather_with_grad, sizes)
            all_y = gather_features(y, self.gather_with_grad, sizes)
            logits = add_bias(scale * all_x @ all_y.T, bias)
            target = torch.arange(total, device=x.device)
            return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
