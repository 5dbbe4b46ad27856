"""A frozen text tower that remembers what it has encoded.

Domain captions often come from a small closed set (shape descriptions x templates, knowledge
facets of a few findings, OSM captions), and with the text tower frozen (LiT, M-FLAG) every repeat
of a caption gives the same embedding. On CPU the MiniLM forward can cost more than the whole
image or point tower step, so caching it makes such runs several times faster without changing a
single number they compute.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..errors import ConfigError
from ..registry import TOWERS, build
from .base import Tower, TowerOutput


@TOWERS.register_module()
class FrozenTextCache(Tower):
    """Wraps any text tower config; caches pooled outputs per distinct (unpadded) token sequence
    while the wrapped tower is frozen, and passes straight through when it is trainable.
    Token-level outputs are not cached (returned as None): use it with pooled-embedding losses."""

    modality = "text"

    def __init__(self, tower: Mapping[str, Any], max_entries: int = 100_000):
        super().__init__()
        self.tower = build(TOWERS, tower, where="tower")
        if self.tower.modality != "text":
            raise ConfigError(f"FrozenTextCache wraps text towers, got modality {self.tower.modality!r}",
                              key="tower")
        self.width = self.tower.width
        self.max_entries = max_entries
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}
        self.set_trainable("none")

    def tokenize(self, texts):
        return self.tower.tokenize(texts)

    @property
    def unk_token_id(self):
        return getattr(self.tower, "unk_token_id", None)

    def forward(self, batch: dict, mask_ratio: float = 0.0) -> TowerOutput:
        if not self.frozen:
            return self.tower(batch, mask_ratio)
        text = batch["text_input"]
        ids, mask = text["input_ids"], text["attention_mask"].bool()
        keys = [tuple(row[m].tolist()) for row, m in zip(ids, mask)]
        first_seen: dict[tuple[int, ...], int] = {}
        for i, key in enumerate(keys):
            if key not in self._cache:
                first_seen.setdefault(key, i)
        missing = list(first_seen.values())
        if missing:
            sub = {"text_input": {name: value[missing] for name, value in text.items()}}
            with torch.no_grad():
                pooled = self.tower(sub).pooled
            if len(self._cache) + len(missing) > self.max_entries:
                self._cache.clear()
            for i, row in zip(missing, pooled):
                self._cache[keys[i]] = row.detach()
        pooled = torch.stack([self._cache[k] for k in keys]).to(ids.device)
        return TowerOutput(pooled, None, None)

    def set_trainable(self, spec="all") -> None:
        self.tower.set_trainable(spec)
        self._cache.clear()

    def blocks(self):
        return self.tower.blocks()

    def final_norm(self):
        return self.tower.final_norm()

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.tower.set_grad_checkpointing(enabled)
