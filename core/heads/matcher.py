"""Hungarian matching of predicted boxes to targets (DETR / OWL-ViT training).

Each target is assigned the one prediction that minimises a weighted sum of a class cost (the
negated sigmoid-focal-style score of the target's class), an L1 box cost and a negated GIoU;
scipy's `linear_sum_assignment` solves the assignment exactly.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, generalized_box_iou


class HungarianMatcher:
    def __init__(self, cost_class: float = 2.0, cost_l1: float = 5.0, cost_giou: float = 2.0,
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0):
        self.cost_class, self.cost_l1, self.cost_giou = cost_class, cost_l1, cost_giou
        self.alpha, self.gamma = focal_alpha, focal_gamma

    def cost_matrix(self, logits: torch.Tensor, boxes: torch.Tensor, target_labels: torch.Tensor,
                    target_boxes: torch.Tensor) -> torch.Tensor:
        """(Q, M) cost of giving target m to prediction q, for one image.

        logits (Q, K) raw class scores; boxes (Q, 4) and target_boxes (M, 4) normalised cxcywh.
        """
        prob = logits.sigmoid()[:, target_labels]  # (Q, M)
        # The focal form of the class cost (Deformable-DETR): the gain of calling it positive
        # against the cost of calling it negative, each weighted as in the focal loss.
        neg = (1 - self.alpha) * prob.pow(self.gamma) * -(1 - prob + 1e-8).log()
        pos = self.alpha * (1 - prob).pow(self.gamma) * -(prob + 1e-8).log()
        cost_class = pos - neg
        cost_l1 = torch.cdist(boxes, target_boxes, p=1)
        cost_giou = -generalized_box_iou(box_convert(boxes, "cxcywh", "xyxy"),
                                         box_convert(target_boxes, "cxcywh", "xyxy"))
        return self.cost_class * cost_class + self.cost_l1 * cost_l1 + self.cost_giou * cost_giou

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict]) -> list[tuple]:
        """Per image, (prediction indices, target indices) as int64 tensors of equal length."""
        matches = []
        for b, target in enumerate(targets):
            if len(target["labels"]) == 0:
                empty = torch.empty(0, dtype=torch.int64)
                matches.append((empty, empty))
                continue
            cost = self.cost_matrix(logits[b].float(), boxes[b].float(), target["labels"],
                                    target["boxes"].float())
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return matches
