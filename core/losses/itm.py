"""ITMLoss: image-text matching on a small fusion block, with in-batch hard negatives (ALBEF,
Li et al. 2021, "Align before Fuse").

For a pair (a, b), the tokens of b (text) attend to themselves and then to the tokens of a (image)
in ``depth`` pre-norm transformer layers; the masked mean of the fused tokens goes to a binary
head: matched or not. Each batch scores its B true pairs and 2B negatives: for every a_i one b_j
drawn with probability softmax(scale * <a_i, b_j>) over the other items, and for every b_j one a_i
drawn the same way, so the negatives are the ones the contrastive embedding finds hardest.
Items whose label vectors are identical are never drawn as each other's negatives (two "normal"
X-rays would be false negatives); an item with no allowed partner contributes no negative.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES
from .base import PairLoss, full_precision, token_mask


class FusionLayer(nn.Module):
    """Self-attention over the query tokens, cross-attention into the context tokens, MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, query, query_mask, context, context_mask):
        h = self.norm_self(query)
        query = query + self.self_attn(h, h, h, key_padding_mask=~query_mask, need_weights=False)[0]
        h, c = self.norm_query(query), self.norm_context(context)
        query = query + self.cross_attn(h, c, c, key_padding_mask=~context_mask, need_weights=False)[0]
        return query + self.mlp(self.norm_mlp(query))


class MatchHead(nn.Module):
    """Fusion layers and a 2-way classifier (0 = not matched, 1 = matched)."""

    def __init__(self, dim: int, heads: int, depth: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(FusionLayer(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, 2)

    def forward(self, query, query_mask, context, context_mask) -> torch.Tensor:
        for layer in self.layers:
            query = layer(query, query_mask, context, context_mask)
        keep = query_mask.unsqueeze(-1).to(query.dtype)
        pooled = (self.norm(query) * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        return self.classifier(pooled)


def sample_negatives(logits: torch.Tensor, forbidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row with an allowed column, one column drawn from softmax over allowed columns.

    Returns (rows, drawn columns)."""
    rows = (~forbidden).any(dim=1).nonzero().squeeze(1)
    if rows.numel() == 0:
        return rows, rows
    probs = logits[rows].masked_fill(forbidden[rows], float("-inf")).softmax(dim=1)
    return rows, torch.multinomial(probs, 1).squeeze(1)


@LOSSES.register_module()
class ITMLoss(PairLoss):
    name = "itm"
    needs_tokens = True

    def __init__(
        self,
        embed_dim: int,
        pairs: Iterable[Iterable[str]] = (("image", "text"),),
        heads: int = 4,
        depth: int = 1,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ):
        super().__init__(pairs)
        # One head per pair: matching points to text is a different question from images to text.
        self.heads = nn.ModuleDict(
            {f"{a}-{b}": MatchHead(embed_dim, heads, depth, mlp_ratio, dropout) for a, b in self.pairs}
        )

    def match_logits(self, a: str, b: str, outputs: dict[str, Any], index_a, index_b) -> torch.Tensor:
        """(N, 2) match logits of the pairs (a[index_a[n]], b[index_b[n]])."""
        tokens_a, mask_a = outputs["tokens"][a], token_mask(outputs, a)
        tokens_b, mask_b = outputs["tokens"][b], token_mask(outputs, b)
        return self.heads[f"{a}-{b}"](
            tokens_b[index_b], mask_b[index_b], tokens_a[index_a], mask_a[index_a]
        )

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        x, y = outputs["embeds"][a], outputs["embeds"][b]
        n, device = x.shape[0], x.device
        with torch.no_grad(), full_precision(device):
            sim = outputs["logit_scale"].float() * x.float() @ y.float().T
            forbidden = torch.eye(n, dtype=torch.bool, device=device)
            labels = batch.get("labels")
            if labels is not None:
                labels = labels.to(device)
                forbidden |= (labels[:, None, :] == labels[None, :, :]).all(dim=-1)
            rows_a, neg_b = sample_negatives(sim, forbidden)
            rows_b, neg_a = sample_negatives(sim.T, forbidden.T)
        own = torch.arange(n, device=device)
        index_a = torch.cat([own, rows_a, neg_a])
        index_b = torch.cat([own, neg_b, rows_b])
        target = torch.cat([torch.ones(n, device=device), torch.zeros(len(rows_a) + len(rows_b), device=device)])
        logits = self.match_logits(a, b, outputs, index_a, index_b)
        with full_precision(device):
            return F.cross_entropy(logits.float(), target.long())
