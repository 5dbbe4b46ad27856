"""QueryLoss: multi-label alignment to a fixed vocabulary of knowledge queries (KAD / MedKLIP
style).

Instead of one caption per item, every batch carries the same list of query texts (UMLS entities,
shape attributes, ...) and each item a multi-hot ``batch["query_targets"]`` saying which queries
hold for it. Every (item, query) pair is an independent binary problem on the logit
``scale * <x_i, q_k> + bias``, so an item may match many queries and a query many items. Classes
never seen in training can then be described by queries that were: their prompt is the set of
their queries (e.g. ``ShapeKnowledge(prompts="attributes")``).

The loss is the mean binary cross-entropy over items and queries. ``pos_weight`` rescales the
positive terms when a vocabulary is mostly negatives for each item. In DDP each rank scores its
own items against the (identical) query embeddings; ranks average like the other losses do.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import LOSSES
from .base import PairLoss, full_precision


@LOSSES.register_module()
class QueryLoss(PairLoss):
    name = "query"

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "query"),), pos_weight: float = 1.0):
        super().__init__(pairs)
        if pos_weight <= 0:
            raise ConfigError(f"QueryLoss: pos_weight must be > 0, got {pos_weight}")
        self.pos_weight = float(pos_weight)

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        bias = outputs.get("logit_bias")
        if bias is None:
            raise ConfigError("QueryLoss needs a learnable logit bias: set model.init_logit_bias")
        targets = batch.get("query_targets")
        x, q = outputs["embeds"][a], outputs["embeds"][b]
        if targets is None or tuple(targets.shape) != (x.shape[0], q.shape[0]):
            got = None if targets is None else tuple(targets.shape)
            raise ConfigError(
                f"QueryLoss: batch['query_targets'] must be (items, queries) = "
                f"{(x.shape[0], q.shape[0])}, got {got}: the dataset must give query_targets "
                f"and its queries"
            )
        with full_precision(x.device):
            logits = outputs["logit_scale"].float() * x.float() @ q.float().T + bias.float()
            weight = torch.tensor(self.pos_weight, device=x.device)
            return F.binary_cross_entropy_with_logits(logits, targets.float().to(x.device),
                                                      pos_weight=weight)
