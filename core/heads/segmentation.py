"""SegmentationModel: pre-trained towers + a decoder head from `HEADS`, trained by the engine.

The towers sit under the same names as in `ContrastiveModel` (`towers.<modality>.*`,
`projections.<modality>.*`), so a pre-training checkpoint maps onto them key by key
(`encoder_init.load_encoder`). See docs/architecture.md, "Task models and heads".
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from torch import nn

from ..errors import ConfigError
from ..model import make_projection, project_dense
from ..registry import HEADS, MODELS, TOWERS, build
from ..towers.base import Tower
from .encoder_mode import keep_frozen_norm_stats, run_maybe_frozen, trainable_spec
from .param_groups import layerwise_param_groups
from .pyramid import SimpleFeaturePyramid


@MODELS.register_module()
class SegmentationModel(nn.Module):
    """Image towers -> multi-level maps (+ a ViTDet pyramid for plain ViTs) -> head -> logits.

    encoder: "frozen" | "full" | "last_n=N", or a dict modality -> mode.
    levels: which tower levels feed the head (an int n = the last n, as in timm).
    pyramid: "auto" (a simple feature pyramid when every level has one stride, i.e. a plain
        ViT), "simple" (always, from the last level) or "none".
    class_prompts: for a text-conditioned head (`needs_text`), per class a prompt or a list of
        prompts (an ensemble, averaged); needs a `text` tower.
    inference_roi: (h, w); `predict` on larger images slides a window of this size
        (`monai.inferers.sliding_window_inference`) - for towers fixed to one input size.
    """

    def __init__(self, towers: Mapping[str, Mapping[str, Any]], head: Mapping[str, Any],
                 num_classes: int, levels: int | Sequence[int] = 4, pyramid: str = "auto",
                 encoder: str | Mapping[str, str] = "full", embed_dim: int = 512,
                 proj: str | Mapping[str, str] = "linear", proj_bias: bool = False,
                 class_prompts: Sequence[str | Sequence[str]] | None = None,
                 inference_roi: Sequence[int] | None = None, sw_batch_size: int = 4):
        super().__init__()
        if "image" not in towers:
            raise ConfigError(f"SegmentationModel needs an 'image' tower, got {list(towers)}")
        if pyramid not in ("auto", "simple", "none"):
            raise ConfigError(f"model.pyramid must be 'auto', 'simple' or 'none', got {pyramid!r}")
        self.num_classes = int(num_classes)
        self.towers = nn.ModuleDict()
        for modality, cfg in towers.items():
            tower = build(TOWERS, cfg, where=f"model.towers.{modality}")
            if not isinstance(tower, Tower):
                raise ConfigError(f"model.towers.{modality}: {type(tower).__name__} is not a Tower")
            self.towers[modality] = tower

        image = self.towers["image"]
        self.levels = levels
        specs = image.level_specs(levels)
        self.pyramid = None
        if pyramid == "simple" or (pyramid == "auto" and len({s.stride for s in specs}) == 1):
            self.levels = 1  # ViTDet builds every scale from the last map alone
            last = image.level_specs(1)[-1]
            self.pyramid = SimpleFeaturePyramid(last.channels, last.stride)
            specs = self.pyramid.specs
        self.head = build(HEADS, head, where="model.head", in_channels=[s.channels for s in specs],
                          strides=[s.stride for s in specs], num_classes=self.num_classes)

        self.projections = nn.ModuleDict()
        self.class_prompts = None
        if getattr(self.head, "needs_text", False):
            if "text" not in self.towers or not class_prompts:
                raise ConfigError(f"model.head {type(self.head).__name__} compares patches with "
                                  "class prompts: it needs a 'text' tower and class_prompts")
            if len(class_prompts) != self.num_classes:
                raise ConfigError(f"model.class_prompts has {len(class_prompts)} entries for "
                                  f"num_classes={self.num_classes}")
            self.class_prompts = [[p] if isinstance(p, str) else list(p) for p in class_prompts]
            for modality in ("image", "text"):
                kind = proj[modality] if isinstance(proj, Mapping) else proj
                self.projections[modality] = make_projection(
                    kind, self.towers[modality].width, embed_dim, proj_bias)
        elif set(self.towers) != {"image"}:
            raise ConfigError(f"model.towers: only a text-conditioned head uses towers besides "
                              f"'image', got {list(self.towers)}")

        for modality, tower in self.towers.items():
            mode = encoder[modality] if isinstance(encoder, Mapping) else encoder
            tower.set_trainable(trainable_spec(mode))
            if modality in self.projections:  # a projection belongs to its (pre-trained) tower
                self.projections[modality].requires_grad_(not tower.frozen)
        self.inference_roi = tuple(inference_roi) if inference_roi else None
        self.sw_batch_size = sw_batch_size

    tokenize = None  # class prompts are tokenised here; captions in a batch are not needed

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            keep_frozen_norm_stats(self.towers)
        return self

    # -- forward ------------------------------------------------------------------------------
    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False) -> dict:
        if mask_ratio:
            raise ConfigError("engine.mask_ratio must be 0 for segmentation: every patch is predicted")
        size = batch["seg"].shape[-2:] if "seg" in batch else batch["image"].shape[-2:]
        return {"seg_logits": self.segment(batch["image"], size)}

    def segment(self, images: torch.Tensor, size: Sequence[int] | None = None) -> torch.Tensor:
        """(B, C, H, W) -> (B, K, *size) logits (size defaults to the input's)."""
        image_tower = self.towers["image"]
        if self.projections:
            dense = run_maybe_frozen(image_tower, image_tower.forward_dense, images)
            logits = self.head(project_dense(self.projections["image"], dense), self.class_embeddings())
        else:
            levels = run_maybe_frozen(image_tower, image_tower.forward_levels, images, self.levels)
            if self.pyramid is not None:
                levels = self.pyramid(levels[-1])
            logits = self.head(list(levels))
        return F.interpolate(logits, size=tuple(size or images.shape[-2:]), mode="bilinear",
                             align_corners=False)

    def class_embeddings(self) -> torch.Tensor:
        """(K, D): each class's prompt ensemble through the text tower and projection, averaged."""
        text = self.towers["text"]
        flat = [p for prompts in self.class_prompts for p in prompts]
        device = next(self.projections["text"].parameters()).device
        tokens = {k: v.to(device) for k, v in text.tokenize(flat).items()}
        pooled = run_maybe_frozen(text, text, {"text_input": tokens}).pooled
        embeds = F.normalize(self.projections["text"](pooled), dim=-1)
        owner = torch.tensor([k for k, prompts in enumerate(self.class_prompts) for _ in prompts],
                             device=device)
        summed = torch.zeros(self.num_classes, embeds.shape[-1], device=device, dtype=embeds.dtype)
        return F.normalize(summed.index_add(0, owner, embeds), dim=-1)

    @torch.no_grad()
    def predict(self, batch: dict) -> dict:
        images = batch["image"]
        if self.inference_roi and any(s > r for s, r in zip(images.shape[-2:], self.inference_roi)):
            logits = sliding_window_inference(images, self.inference_roi, self.sw_batch_size,
                                              lambda window: self.segment(window), overlap=0.25)
        else:
            logits = self.segment(images)
        if "seg" in batch and tuple(batch["seg"].shape[-2:]) != tuple(logits.shape[-2:]):
            logits = F.interpolate(logits, size=batch["seg"].shape[-2:], mode="bilinear",
                                   align_corners=False)
        return {"seg_logits": logits, "seg": logits.argmax(1)}

    # -- fine-tuning hooks ------------------------------------------------------------------
    def param_groups(self, optim_cfg: Mapping) -> list[dict]:
        encoders = {f"towers.{m}.": (tower, tower.blocks()) for m, tower in self.towers.items()}
        return layerwise_param_groups(self, optim_cfg, encoders, encoder_tops=("projections.",))

    def encoder_state_from(self, state: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, torch.Tensor]]:
        """A pre-training model's state -> {our key: (its key, tensor)}: the towers and
        projections of our modalities keep their names; other towers, temperatures are not ours."""
        ours = tuple(f"{part}.{m}." for part in ("towers", "projections") for m in self.towers)
        return {k: (k, v) for k, v in state.items() if k.startswith(ours)}
