"""GroundingModel: a ContrastiveModel that also returns boxes for text queries.

It *is* a ContrastiveModel (same towers, projections and temperature, so a pre-training checkpoint
loads key for key) plus a box head on the image tower's tokens. The texts to find come from the
batch's `query_input` (class prompts or phrases, tokenised once by the collate from the dataset's
`queries`); each image token's class embedding is the pre-trained image projection of that token,
scored against the projected text queries (OWL-ViT). Outputs follow the DETR convention:
`pred_logits` (B, T, K) and `pred_boxes` (B, T, 4) normalised cxcywh.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..model import ContrastiveModel
from ..registry import HEADS, MODELS, build
from .boxes import to_pixel_xyxy


@MODELS.register_module()
class GroundingModel(ContrastiveModel):
    def __init__(self, head: Mapping[str, Any] | None = None, **contrastive):
        super().__init__(**contrastive)
        if "image" not in self.towers or "text" not in self.towers:
            raise ConfigError("GroundingModel needs an image tower and a text tower")
        head = dict(head or {"type": "OWLBoxHead"})
        head.setdefault("width", self.towers["image"].width)
        self.head = build(HEADS, head, where="model.head")

    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False) -> dict:
        # Boxes need every patch: masking (FLIP) is a pre-training device and stays off here.
        if "query_input" not in batch:
            raise ConfigError("GroundingModel needs text queries: the dataset must define `queries`")
        image = self.run_tower("image", batch)
        if image.tokens is None:
            raise ConfigError(f"{type(self.towers['image']).__name__} gives no tokens to put boxes on")
        queries = self.run_tower("text", {"text_input": batch["query_input"]})
        query_embeds = F.normalize(self.projections["text"](queries.pooled), dim=-1)
        head_out = self.head(image.tokens, tuple(batch["image"].shape[-2:]))
        class_embeds = F.normalize(self.projections["image"](head_out["features"]), dim=-1)
        return {
            "embeds": {"image": F.normalize(self.projections["image"](image.pooled), dim=-1),
                       "query": query_embeds},
            "tokens": {}, "token_mask": {},
            "logit_scale": self.logit_scale.exp().clamp(max=self.max_logit_scale).squeeze(0),
            "logit_bias": None,
            "pred_logits": self.head.class_logits(class_embeds, query_embeds, head_out),
            "pred_boxes": head_out["pred_boxes"],
        }

    @torch.no_grad()
    def predict(self, batch: dict, top_k: int = 100) -> dict[str, list[dict[str, torch.Tensor]]]:
        """`{"detections": [per image: the top_k (token, text) pairs by score]}`, each with
        boxes (xyxy pixels of the model input), scores (sigmoid) and labels (text query index)."""
        outputs = self.forward(batch)
        height, width = batch["image"].shape[-2:]
        results = []
        for logits, boxes in zip(outputs["pred_logits"].float(), outputs["pred_boxes"].float()):
            scores = logits.sigmoid().flatten()  # (T*K,): token-major
            k = min(top_k, scores.numel())
            best, order = scores.topk(k)
            tokens, labels = order // logits.shape[1], order % logits.shape[1]
            results.append({"boxes": to_pixel_xyxy(boxes[tokens], height, width), "scores": best,
                            "labels": labels})
        return {"detections": results}
