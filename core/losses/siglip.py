"""SigLIPLoss: the pairwise sigmoid loss (Zhai et al. 2023, "Sigmoid Loss for Language Image
Pre-Training").

Every (a_i, b_j) pair is an independent binary problem: label +1 on the diagonal, -1 elsewhere,
logit ``scale * <a_i, b_j> + bias``; the loss is the negative log-sigmoid summed over all pairs
and divided by the batch size. In DDP each rank scores its own rows against the gathered columns
(the simple all-gather variant rather than the paper's ring of chunk exchanges); the rank losses
are scaled so that their mean is the global loss.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..distributed import gather_features, gather_sizes, shard_offset, world_info
from ..errors import ConfigError
from ..registry import LOSSES
from .base import PairLoss, full_precision


@LOSSES.register_module()
class SigLIPLoss(PairLoss):
    name = "siglip"

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "text"),), gather_with_grad: bool = True):
        super().__init__(pairs)
        self.gather_with_grad = gather_with_grad

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        bias = outputs.get("logit_bias")
        if bias is None:
            raise ConfigError(
                "SigLIPLoss needs a learnable logit bias: set model.init_logit_bias (the paper "
                "starts from -10 with init_logit_scale=log(10))"
            )
        x, y = outputs["embeds"][a], outputs["embeds"][b]
        with full_precision(x.device):
            x, y = x.float(), y.float()
            _, world = world_info()
            sizes = gather_sizes(x.shape[0], x.device)
            all_y = gather_features(y, self.gather_with_grad, sizes)
            logits = outputs["logit_scale"].float() * x @ all_y.T + bias.float()
            signs = -torch.ones_like(logits)
            rows = torch.arange(x.shape[0], device=x.device)
            signs[rows, rows + shard_offset(sizes)] = 1.0
            return -F.logsigmoid(signs * logits).sum() * world / sum(sizes)
