"""ContrastiveModel: any set of towers projected into one embedding space.

CLIP/SigLIP pair an image tower with a text tower; ULIP adds a point tower aligned to both. The
model is the same: towers by modality, a projection each, a learnable temperature (and bias, for
SigLIP). Losses decide which pairs to align.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .registry import MODELS, TOWERS, build
from .towers.base import Tower


def make_projection(kind: str, width: int, embed_dim: int, bias: bool = False) -> nn.Module:
    if kind == "linear":
        return nn.Linear(width, embed_dim, bias=bias)
    if kind == "mlp":
        hidden = (width + embed_dim) // 2
        return nn.Sequential(
            nn.Linear(width, hidden, bias=False), nn.GELU(), nn.Linear(hidden, embed_dim, bias=False)
        )
    if kind == "none":
        if width != embed_dim:
            raise ConfigError(f"proj='none' needs tower width {width} == embed_dim {embed_dim}")
        return nn.Identity()
    raise ConfigError(f"proj must be 'linear', 'mlp' or 'none', got {kind!r}")


def project_dense(projection: nn.Module, dense: torch.Tensor) -> torch.Tensor:
    """(B, W, h, w) tower features -> (B, D, h, w) projected and L2-normalised at every position."""
    projected = projection(dense.permute(0, 2, 3, 1))
    return F.normalize(projected, dim=-1).permute(0, 3, 1, 2)


@MODELS.register_module()
class ContrastiveModel(nn.Module):
    def __init__(
        self,
        towers: Mapping[str, Mapping[str, Any]],
        embed_dim: int = 512,
        proj: str | Mapping[str, str] = "linear",
        proj_bias: bool = False,
        trainable: Mapping[str, str | int] | None = None,
        init_logit_scale: float = math.log(1 / 0.07),
        init_logit_bias: float | None = None,
        max_logit_scale: float = 100.0,
    ):
        super().__init__()
        if not towers:
            raise ConfigError("ContrastiveModel needs at least one tower")
        self.towers = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        for modality, cfg in towers.items():
            tower = build(TOWERS, cfg, where=f"model.towers.{modality}")
            if not isinstance(tower, Tower):
                raise ConfigError(f"model.towers.{modality}: {type(tower).__name__} is not a Tower")
            kind = proj[modality] if isinstance(proj, Mapping) else proj
            self.towers[modality] = tower
            self.projections[modality] = make_projection(kind, tower.width, embed_dim, proj_bias)
        self.embed_dim = embed_dim
        # Shape (1,), not (): FSDP2 cannot shard 0-d parameters. Outputs give them as scalars.
        self.logit_scale = nn.Parameter(torch.tensor([float(init_logit_scale)]))
        self.logit_bias = (
            nn.Parameter(torch.tensor([float(init_logit_bias)])) if init_logit_bias is not None else None
        )
        self.max_logit_scale = max_logit_scale
        for modality, spec in (trainable or {}).items():
            if modality not in self.towers:
                raise ConfigError(f"model.trainable: no tower '{modality}' ({list(self.towers)})")
            self.towers[modality].set_trainable(spec)

    @property
    def modalities(self) -> list[str]:
        return list(self.towers)

    @property
    def tokenize(self) -> Callable[[list[str]], dict[str, torch.Tensor]] | None:
        text = self.towers["text"] if "text" in self.towers else None
        return text.tokenize if text is not None else None

    def train(self, mode: bool = True):
        super().train(mode)
        # A fully frozen tower (M-FLAG, LiT) stays in eval mode: no dropout noise, no BN drift.
        for tower in self.towers.values():
            if tower.frozen:
                tower.eval()
        return self

    def run_tower(self, modality: str, batch: dict, mask_ratio: float = 0.0):
        # Masking (FLIP patches, point-group tokens) is for towers that learn: a frozen tower is
        # a fixed target and sees the whole input. Text towers ignore mask_ratio.
        tower = self.towers[modality]
        if tower.frozen:
            with torch.no_grad():
                return tower(batch)
        return tower(batch, mask_ratio=mask_ratio)

    def encode(self, modality: str, batch: dict, normalize: bool = True) -> torch.Tensor:
        out = self.run_tower(modality, batch)
        embeds = self.projections[modality](out.pooled)
        return F.normalize(embeds, dim=-1) if normalize else embeds

    def patch_embeddings(self, batch: dict, modality: str = "image") -> torch.Tensor:
        """(B, D, h, w): every patch in the joint embedding space (the pooled features' projection
        applied per position, then L2-normalised), for zero-shot similarity maps and
        text-conditioned heads."""
        tower = self.towers[modality]
        with torch.no_grad() if tower.frozen else contextlib.nullcontext():
            dense = tower.forward_dense(batch)
        return project_dense(self.projections[modality], dense)

    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False) -> dict:
        embeds, tokens, token_masks = {}, {}, {}
        for modality in self.towers:
            if not self._present(modality, batch):
                continue
            out = self.run_tower(modality, batch, mask_ratio)
            proj = self.projections[modality]
            embeds[modality] = F.normalize(proj(out.pooled), dim=-1)
            if with_tokens and out.tokens is not None:
                tokens[modality] = proj(out.tokens)
                token_masks[modality] = out.token_mask
        if "query_input" in batch and "text" in self.towers:
            # a fixed query vocabulary (QueryLoss) goes through the text tower and projection
            out = self.run_tower("text", {"text_input": batch["query_input"]})
            embeds["query"] = F.normalize(self.projections["text"](out.pooled), dim=-1)
        return {
            "embeds": embeds,
            "tokens": tokens,
            "token_mask": token_masks,
            "logit_scale": self.logit_scale.exp().clamp(max=self.max_logit_scale).squeeze(0),
            "logit_bias": self.logit_bias.squeeze(0) if self.logit_bias is not None else None,
        }

    @staticmethod
    def _present(modality: str, batch: dict) -> bool:
        return ("text_input" if modality == "text" else modality) in batch
