"""FILIPLoss: token-wise late interaction (Yao et al. 2021, "FILIP").

The similarity of a_i to b_j is the mean, over the real tokens of a_i, of each token's best cosine
match among the real tokens of b_j; b_j to a_i is the same the other way round (so the two
directions differ). Each direction then goes through InfoNCE against the diagonal. Padding tokens
(``token_mask`` False) are never matched and never averaged.

The negatives are this rank's batch: gathering every rank's token grids costs B x T x D per rank.
Columns are processed in chunks so that the B x c x Ta x Tb interaction tensor stays bounded;
``max(dim).values`` keeps only argmax indices for backward, not the 4-D tensor.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..registry import LOSSES
from .base import PairLoss, full_precision, token_mask


def late_interaction(
    a: torch.Tensor, mask_a: torch.Tensor, b: torch.Tensor, mask_b: torch.Tensor, max_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B_a, B_b) similarities a->b and b->a (both indexed [i, j]) of L2-normalised tokens."""
    chunk = max(1, max_elements // max(1, a.shape[0] * a.shape[1] * b.shape[1]))
    valid_a = mask_a[:, None, :]  # (Ba, 1, Ta)
    count_a = mask_a.sum(dim=1, keepdim=True).clamp(min=1)  # (Ba, 1)
    a_to_b, b_to_a = [], []
    for start in range(0, b.shape[0], chunk):
        b_chunk, mb = b[start : start + chunk], mask_b[start : start + chunk]
        sim = torch.einsum("ikd,jld->ijkl", a, b_chunk)  # (Ba, c, Ta, Tb)
        lowest = torch.finfo(sim.dtype).min
        best_in_b = sim.masked_fill(~mb[None, :, None, :], lowest).max(dim=3).values  # (Ba, c, Ta)
        best_in_a = sim.masked_fill(~mask_a[:, None, :, None], lowest).max(dim=2).values  # (Ba, c, Tb)
        a_to_b.append(torch.where(valid_a, best_in_b, 0).sum(dim=2) / count_a)
        count_b = mb.sum(dim=1).clamp(min=1)[None, :]  # (1, c)
        b_to_a.append(torch.where(mb[None], best_in_a, 0).sum(dim=2) / count_b)
    return torch.cat(a_to_b, dim=1), torch.cat(b_to_a, dim=1)


@LOSSES.register_module()
class FILIPLoss(PairLoss):
    name = "filip"
    needs_tokens = True

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "text"),), max_elements: int = 2**25):
        super().__init__(pairs)
        self.max_elements = max_elements

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        tokens_a = F.normalize(outputs["tokens"][a], dim=-1)
        tokens_b = F.normalize(outputs["tokens"][b], dim=-1)
        # The token interaction is the heavy part and may run under autocast; the softmax may not.
        sim_ab, sim_ba = late_interaction(
            tokens_a, token_mask(outputs, a), tokens_b, token_mask(outputs, b), self.max_elements
        )
        with full_precision(tokens_a.device):
            scale = outputs["logit_scale"].float()
            target = torch.arange(sim_ab.shape[0], device=sim_ab.device)
            loss_ab = F.cross_entropy(scale * sim_ab.float(), target)
            loss_ba = F.cross_entropy(scale * sim_ba.float().T, target)
            return (loss_ab + loss_ba) / 2
