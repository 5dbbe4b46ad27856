"""ITM re-ranking of retrieval candidates (ALBEF/BLIP): the contrastive embedding picks each
query's top-k candidates, the fusion encoder's match score orders them.

The re-ranked score matrix keeps every candidate outside the top-k at its similarity and lifts
the top-k above all of them, in the order of their ITM log-odds (matched minus not-matched
logit), so recall@K for K <= k measures the ITM order and recall@K for K > k still counts the
candidates below.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..collate import move_to
from .encode import iterate


def rerank_rows(similarity: torch.Tensor, match_score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                k: int) -> torch.Tensor:
    """(R, C) similarity -> (R, C) scores: each row's k most similar columns ordered by
    ``match_score(rows, columns)`` (1-D index tensors -> 1-D scores) and placed above the rest."""
    similarity = similarity.double()
    k = min(k, similarity.shape[1])
    top = similarity.topk(k, dim=1).indices
    rows = torch.arange(similarity.shape[0])[:, None].expand(-1, k)
    scores = match_score(rows.reshape(-1), top.reshape(-1)).double().view(-1, k)
    reranked = similarity.clone()
    # every re-ranked score is at least max(similarity) + 1: above any candidate left out
    reranked[rows, top] = scores - scores.min() + similarity.max() + 1
    return reranked


class MatchScorer:
    """ITM log-odds of (item, text) pairs from the tower tokens kept at encoding time."""

    def __init__(self, model, item_tokens: list[torch.Tensor], text_tokens: list[torch.Tensor],
                 device, batch_size: int = 64):
        self.model, self.device, self.batch_size = model, device, batch_size
        self.item_tokens, self.text_tokens = item_tokens, text_tokens

    @torch.no_grad()
    def __call__(self, items: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
        scores = []
        for start in range(0, len(items), self.batch_size):
            i = items[start : start + self.batch_size].tolist()
            t = texts[start : start + self.batch_size].tolist()
            image, image_mask = pad([self.item_tokens[n] for n in i])
            text, text_mask = pad([self.text_tokens[n] for n in t])
            logits = self.model.fusion.match_logits(
                text.to(self.device), text_mask.to(self.device), image.to(self.device),
                image_mask.to(self.device)).float().cpu()
            scores.append(logits[:, 1] - logits[:, 0])
        return torch.cat(scores)


def pad(grids: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_n, W) grids -> (N, T_max, W) zero-padded and its (N, T_max) bool mask."""
    longest = max(g.shape[0] for g in grids)
    stacked = torch.stack([F.pad(g, (0, 0, 0, longest - g.shape[0])) for g in grids])
    mask = torch.stack([torch.arange(longest) < g.shape[0] for g in grids])
    return stacked, mask


def real_tokens(tokens: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
    """A (B, T, W) grid as B grids of their real tokens only (padding dropped)."""
    tokens = tokens.float().cpu()
    if mask is None:
        return list(tokens)
    return [row[m] for row, m in zip(tokens, mask.bool().cpu())]


@torch.no_grad()
def encode_with_tokens(model, dataset, modality: str, device, batch_size: int = 64,
                       num_workers: int = 0):
    """(N, D) normalised embeddings, each item's tower tokens, every item's facets."""
    embeds, tokens, facets = [], [], []
    for batch in iterate(dataset, batch_size, num_workers):
        if not batch["size"]:
            continue
        batch = move_to(batch, device)
        emb, grid, mask = model.encode_with_tokens(modality, batch)
        embeds.append(emb.float().cpu())
        tokens.extend(real_tokens(grid, mask))
        facets.extend(batch["facets"])
    return torch.cat(embeds), tokens, facets


@torch.no_grad()
def encode_texts_with_tokens(model, texts: list[str], device, batch_size: int = 256):
    embeds, tokens = [], []
    for start in range(0, len(texts), batch_size):
        batch = move_to({"text_input": model.tokenize(texts[start : start + batch_size])}, device)
        emb, grid, mask = model.encode_with_tokens("text", batch)
        embeds.append(emb.float().cpu())
        tokens.extend(real_tokens(grid, mask))
    return torch.cat(embeds), tokens
