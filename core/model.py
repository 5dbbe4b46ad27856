"""ContrastiveModel: any set of towers projected into one embedding space.

CLIP/SigLIP pair an image tower with a text tower; ULIP adds a point tower aligned to both. The
model is the same: towers by modality, a projection each, a learnable temperature (and bias, for
SigLIP). Losses decide which pairs to align.

With ``fusion=dict(...)`` the model also owns a FusionEncoder (core/fusion.py): the text tokens
attend to the image patch tokens, for image-text matching (ITMLoss, ITM re-ranking at evaluation)
and masked language modelling (MLMLoss).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .fusion import build_fusion, mask_tokens
from .registry import MODELS, TOWERS, build, construct
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
        fusion: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if not towers:
            raise ConfigError("ContrastiveModel needs at least one tower")
        self.towers = nn.ModuleDict()
        self.projections = nn.ModuleDict()
        for modality, cfg in towers.items():
            tower = build(TOWERS, cfg, where=f"towers.{modality}")
            if not isinstance(tower, Tower):
                raise ConfigError(f"{type(tower).__name__} is not a Tower", key=f"towers.{modality}")
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
        self.fusion = None
        if fusion is not None:
            if "image" not in self.towers or "text" not in self.towers:
                raise ConfigError("a fusion encoder needs an image tower and a text tower", key="fusion")
            self.fusion = construct(build_fusion, {"text_tower": self.towers["text"],
                                                   "image_width": self.towers["image"].width,
                                                   **fusion}, where="fusion")
        for modality, spec in (trainable or {}).items():
            if modality not in self.towers:
                raise ConfigError(f"no tower '{modality}' ({list(self.towers)})", key="trainable")
            try:
                self.towers[modality].set_trainable(spec)
            except ConfigError as exc:
                raise exc.within(f"trainable.{modality}")

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

    def encode_with_tokens(self, modality: str, batch: dict):
        """(normalised embeddings (B, D), tower tokens (B, T, W), token mask (B, T) or None): what
        ITM re-ranking at evaluation gives the fusion encoder."""
        out = self.run_tower(modality, batch)
        return F.normalize(self.projections[modality](out.pooled), dim=-1), out.tokens, out.token_mask

    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False,
                with_mlm: bool = False) -> dict:
        embeds, tokens, token_masks, tower_tokens, tower_outs = {}, {}, {}, {}, {}
        for modality in self.towers:
            if not self._present(modality, batch):
                continue
            out = tower_outs[modality] = self.run_tower(modality, batch, mask_ratio)
            proj = self.projections[modality]
            embeds[modality] = F.normalize(proj(out.pooled), dim=-1)
            if with_tokens and out.tokens is not None:
                tokens[modality] = proj(out.tokens)
                token_masks[modality] = out.token_mask
                tower_tokens[modality] = out.tokens
        if "query_input" in batch and "text" in self.towers:
            # a fixed query vocabulary (QueryLoss) goes through the text tower and projection
            out = self.run_tower("text", {"text_input": batch["query_input"]})
            embeds["query"] = F.normalize(self.projections["text"](out.pooled), dim=-1)
        outputs = {
            "embeds": embeds,
            "tokens": tokens,
            "token_mask": token_masks,
            "logit_scale": self.logit_scale.exp().clamp(max=self.max_logit_scale).squeeze(0),
            "logit_bias": self.logit_bias.squeeze(0) if self.logit_bias is not None else None,
        }
        if self.fusion is not None and with_tokens:
            # the fusion encoder reads the towers' own tokens (before projection); ITMLoss scores
            # pairs with it, so it travels with the outputs
            outputs["fusion_tokens"] = {m: tower_tokens[m] for m in ("image", "text") if m in tower_tokens}
            outputs["fusion"] = self.fusion
        if with_mlm:
            outputs["mlm"] = self.masked_language_modelling(batch, tower_outs["image"])
        return outputs

    def masked_language_modelling(self, batch: dict, image_out) -> dict:
        """Per item, the summed cross-entropy of the masked tokens of its caption, read by the
        fusion encoder with the image, and how many tokens were masked: {"loss_sum": (B,) float,
        "count": (B,) int64}. Per item, so that gradient accumulation can join micro-batches."""
        if self.fusion is None or self.fusion.mlm_transform is None:
            raise ConfigError("MLMLoss needs model.fusion with mlm=True")
        text_tower = self.towers["text"]
        vocab = text_tower.mlm_vocabulary()
        text = batch["text_input"]
        masked, labels = mask_tokens(text["input_ids"], text["attention_mask"], vocab.special_ids,
                                     vocab.mask_id, vocab.embeddings.num_embeddings,
                                     self.fusion.mlm_probability)
        text_out = self.run_tower("text", {"text_input": {**text, "input_ids": masked}})
        fused = self.fusion(text_out.tokens, text_out.token_mask, image_out.tokens, image_out.token_mask)
        chosen = labels != -100  # the vocabulary logits only where a token is predicted
        logits = self.fusion.mlm_logits(fused[chosen], vocab.embeddings.weight)
        per_token = F.cross_entropy(logits.float(), labels[chosen], reduction="none")
        item = chosen.nonzero()[:, 0]
        loss_sum = per_token.new_zeros(labels.shape[0]).index_add(0, item, per_token)
        return {"loss_sum": loss_sum, "count": chosen.sum(dim=1)}

    @staticmethod
    def _present(modality: str, batch: dict) -> bool:
        return ("text_input" if modality == "text" else modality) in batch
