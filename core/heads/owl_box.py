"""OWL-ViT-style open-vocabulary box head on a vision tower's tokens.

Every image token (a ViT patch, a CNN feature-map cell) predicts one box and one embedding in the
joint image-text space. A box is a small MLP's offset from the token's own grid cell (the "box
bias" of OWL-ViT: inverse-sigmoid of the cell centre and size), so an untrained head already
proposes one box per cell. The class logit of token q for text t is
`<embed_q, text_t> * scale_q + shift_q`, with a per-token scale and shift, so a text the model
was never trained to detect (a new phrase, another language's class name) can still be scored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import HEADS


def token_grid(num_tokens: int, height: int, width: int) -> tuple[int, int]:
    """(rows, cols) of the token grid that covers an image of `height` x `width` pixels."""
    stride = math.sqrt(height * width / num_tokens)
    rows, cols = round(height / stride), round(width / stride)
    if rows * cols != num_tokens:
        raise ValueError(f"{num_tokens} tokens do not tile a {height}x{width} image on a square grid")
    return rows, cols


def grid_box_bias(rows: int, cols: int, device=None) -> torch.Tensor:
    """(rows*cols, 4) inverse-sigmoid of each cell's normalised (cx, cy, w, h), row-major."""
    cy = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) / rows
    cx = (torch.arange(cols, device=device, dtype=torch.float32) + 0.5) / cols
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")
    size = torch.stack([torch.full_like(cx, 1.0 / cols), torch.full_like(cy, 1.0 / rows)], -1)
    boxes = torch.cat([torch.stack([cx, cy], -1), size], -1).reshape(-1, 4).clamp(1e-4, 1 - 1e-4)
    return torch.logit(boxes)


@HEADS.register_module()
class OWLBoxHead(nn.Module):
    """`forward(tokens (B, T, W), image_hw) -> pred_boxes (B, T, 4) cxcywh, token features`.

    Class embeddings are made by the model (its image projection), so the head stays independent
    of the joint space's size; the head gives the per-token logit scale and shift.
    """

    def __init__(self, width: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or width
        self.norm = nn.LayerNorm(width)
        self.box_mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                     nn.GELU(), nn.Linear(hidden, 4))
        self.logit_shift = nn.Linear(width, 1)
        self.logit_scale = nn.Linear(width, 1)
        # Start as "the box of my own cell" and neutral logits: the pre-trained similarity decides.
        nn.init.zeros_(self.box_mlp[-1].weight)
        nn.init.zeros_(self.box_mlp[-1].bias)
        # RetinaNet's prior: every (token, text) starts at p = 0.01, so the focal loss of the many
        # empty tokens does not swamp the first steps.
        nn.init.zeros_(self.logit_shift.weight)
        nn.init.constant_(self.logit_shift.bias, -math.log(99.0))

    def forward(self, tokens: torch.Tensor, image_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        rows, cols = token_grid(tokens.shape[1], *image_hw)
        x = self.norm(tokens)
        boxes = (self.box_mlp(x) + grid_box_bias(rows, cols, tokens.device)).sigmoid()
        scale = F.elu(self.logit_scale(x)) + 1.0
        return {"pred_boxes": boxes, "logit_scale": scale, "logit_shift": self.logit_shift(x),
                "features": x}

    def class_logits(self, class_embeds: torch.Tensor, text_embeds: torch.Tensor,
                     head_out: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, K) logits of every token for every text; both embeddings L2-normalised."""
        sims = torch.einsum("btd,kd->btk", class_embeds, text_embeds)
        return sims * head_out["logit_scale"] + head_out["logit_shift"]
