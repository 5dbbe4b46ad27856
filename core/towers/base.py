"""The one tower interface shared by vision, text and point encoders (and, later, heads).

A tower reads its own key from the batch dict and returns pooled features, token features and a
token mask. Heads attach through `forward_levels`, so towers never change for a new head.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn


class LevelSpec(NamedTuple):
    channels: int  # C of the (B, C, h, w) map
    stride: int  # input pixels per map pixel


class TowerOutput(NamedTuple):
    pooled: torch.Tensor  # (B, W)
    tokens: torch.Tensor | None  # (B, T, W)
    token_mask: torch.Tensor | None = None  # (B, T) bool, True = real token


class Tower(nn.Module):
    modality: str = ""
    width: int = 0

    def forward(self, batch: dict, mask_ratio: float = 0.0) -> TowerOutput:  # pragma: no cover
        raise NotImplementedError

    def forward_levels(self, batch: dict, indices: Sequence[int] | int = 4) -> list[torch.Tensor]:
        """Feature maps from several depths, for segmentation / grounding heads."""
        raise NotImplementedError(f"{type(self).__name__} has no multi-level features")

    def level_specs(self, indices: Sequence[int] | int = 4) -> list[LevelSpec]:
        """Channels and stride of each map `forward_levels(batch, indices)` returns."""
        raise NotImplementedError(f"{type(self).__name__} has no multi-level features")

    def forward_dense(self, batch: dict) -> torch.Tensor:
        """(B, width, h, w): the final, normalised token features on their spatial grid, i.e. the
        features `forward` pools, before pooling (for projected patch embeddings)."""
        raise NotImplementedError(f"{type(self).__name__} has no dense token map")

    # -- freezing (LiT, M-FLAG) -------------------------------------------------------------
    def blocks(self) -> Sequence[nn.Module]:
        """The tower's repeated blocks in depth order, for partial unfreezing."""
        return []

    def final_norm(self) -> nn.Module | None:
        return None

    def set_trainable(self, spec: str | int = "all") -> None:
        """'all', 'none', or an int N: only the last N blocks (and the final norm) train."""
        if spec == "all":
            self.requires_grad_(True)
            return
        self.requires_grad_(False)
        if spec == "none" or spec == 0:
            return
        if not isinstance(spec, int) or spec < 0:
            raise ValueError(f"trainable must be 'all', 'none' or a block count, got {spec!r}")
        blocks = list(self.blocks())
        if not blocks:
            raise ValueError(f"{type(self).__name__} cannot be partly unfrozen: no blocks known")
        for block in blocks[-spec:]:
            block.requires_grad_(True)
        norm = self.final_norm()
        if norm is not None:
            norm.requires_grad_(True)

    @property
    def frozen(self) -> bool:
        return not any(p.requires_grad for p in self.parameters())

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no gradient checkpointing")
