"""Collate sample dicts into a training batch (unreadable items are counted in `skipped`).

Facet choice is a pure function of (seed, epoch, sample index), not of worker RNG state, so a
resumed run, a different worker count or a different world size all see the same texts.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Sequence

import torch

from .errors import ConfigError
from .sample import facets_of

STACKED = ("image", "points", "labels", "mask", "seg", "query_targets")
LISTED = ("boxes", "box_labels")


class Collator:
    def __init__(
        self,
        tokenize: Callable[[list[str]], dict[str, torch.Tensor]] | None = None,
        seed: int = 0,
        facet: str = "random",
        queries: Sequence[str] | None = None,
    ):
        if facet not in ("random", "first"):
            raise ConfigError(f"must be 'random' or 'first', got {facet!r}", key="train_data.facet")
        self.tokenize = tokenize
        self.seed = seed
        self.facet = facet
        self.epoch = 0
        # a fixed vocabulary (QueryLoss): tokenized once, the same in every batch
        self.queries = list(queries) if queries else None
        self._query_input = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pick_facet(self, facets: list[str], index: int) -> str:
        if self.facet == "first" or len(facets) == 1:
            return facets[0]
        return random.Random(f"{self.seed}:{self.epoch}:{index}").choice(facets)

    def __call__(self, samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        kept = [s for s in samples if s is not None]
        skipped = len(samples) - len(kept) + sum(s.get("meta", {}).get("skipped", 0) for s in kept)
        batch: dict[str, Any] = {"skipped": skipped, "size": len(kept)}
        if not kept:
            return batch
        for key in STACKED:
            if all(key in s for s in kept):
                batch[key] = torch.stack([torch.as_tensor(s[key]) for s in kept])
        for key in LISTED:  # a different count per item: kept as lists
            if key in kept[0]:
                batch[key] = [s.get(key) for s in kept]
        batch["meta"] = [s.get("meta", {}) for s in kept]
        if all("text" in s for s in kept):
            batch["facets"] = [facets_of(s) for s in kept]
            batch["text"] = [
                self.pick_facet(f, m.get("index", i))
                for i, (f, m) in enumerate(zip(batch["facets"], batch["meta"]))
            ]
            if self.tokenize is not None:
                batch["text_input"] = self.tokenize(batch["text"])
        if self.queries and self.tokenize is not None:
            if self._query_input is None:
                self._query_input = self.tokenize(self.queries)
            batch["query_input"] = self._query_input
        return batch


def move_to(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """Tensors (also one level down, e.g. text_input) to `device`; everything else as is."""
    def move(value):
        if torch.is_tensor(value):
            return value.to(device, non_blocking=True)
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        return value

    return {k: move(v) for k, v in batch.items()}
