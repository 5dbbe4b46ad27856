"""MLMLoss: masked language modelling through the fusion encoder (BERT's objective, with the
image to look at, as in ALBEF and BLIP).

The model masks ~15% of each caption's real, non-special tokens, runs the text tower on the
masked caption, fuses it with the image tokens and predicts the masked tokens
(``ContrastiveModel.masked_language_modelling``); it returns per item the summed cross-entropy
and the number of masked tokens. This loss is their ratio over the global batch: the mean
cross-entropy per masked token. Under DDP each rank's share is scaled by world / global count,
so the gradient DDP averages is that of the global mean, also when ranks mask different numbers
of tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..distributed import world_info
from ..errors import ConfigError
from ..registry import LOSSES
from .base import full_precision


@LOSSES.register_module()
class MLMLoss(nn.Module):
    name = "mlm"
    needs_tokens = False
    needs_mlm = True

    def forward(self, outputs: dict[str, Any], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        mlm = outputs.get("mlm")
        if mlm is None:
            raise ConfigError("MLMLoss needs a model with a fusion encoder (model.fusion=dict(mlm=True))")
        with full_precision(mlm["loss_sum"].device):
            total = mlm["loss_sum"].float().sum()
            count = mlm["count"].sum().to(torch.float32)
            world = world_info().world_size
            if world > 1:
                count = count.clone()
                dist.all_reduce(count)
                total = total * world
            loss = total / count.clamp(min=1)
        return {"loss": loss, "mlm/masked_tokens": count.detach()}
