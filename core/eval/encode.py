"""Embedding a dataset and a set of prompts with a trained model, in eval mode and batches."""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..collate import Collator, move_to


def iterate(dataset, batch_size: int, num_workers: int = 0) -> Iterator[dict]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=Collator(tokenize=None, facet="first"))
    yield from loader


@torch.no_grad()
def embed_dataset(model, dataset, modality: str, device, batch_size: int = 64, num_workers: int = 0,
                  keep_facets: bool = False):
    """(N, D) normalised embeddings, (N, K) labels or None, and every item's facets if asked."""
    embeds, labels, facets = [], [], []
    for batch in iterate(dataset, batch_size, num_workers):
        if not batch["size"]:
            continue
        batch = move_to(batch, device)
        embeds.append(model.encode(modality, batch).float().cpu())
        if "labels" in batch:
            labels.append(batch["labels"].float().cpu())
        if keep_facets:
            facets.extend(batch["facets"])
    stacked_labels = torch.cat(labels) if labels and len(labels) == len(embeds) else None
    return torch.cat(embeds), stacked_labels, facets


@torch.no_grad()
def embed_texts(model, texts: list[str], device, batch_size: int = 256) -> torch.Tensor:
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = model.tokenize(texts[start : start + batch_size])
        chunks.append(model.encode("text", move_to({"text_input": tokens}, device)).float().cpu())
    return torch.cat(chunks)


def prompt_ensemble(model, prompts: dict[str, list[str]], classes: list[str], device) -> torch.Tensor:
    """One (K, D) class embedding per class: the normalised mean of its prompt embeddings."""
    rows = []
    for name in classes:
        texts = prompts[name]
        if not texts:
            raise ValueError(f"no prompts for class '{name}'")
        rows.append(F.normalize(embed_texts(model, texts, device).mean(0), dim=-1))
    return torch.stack(rows)
