"""Set-prediction box loss for grounding heads: Hungarian matching, then sigmoid focal + L1 + GIoU.

The head predicts, for every query (an image token in OWL-ViT), a box and one logit per text
query (class prompt or phrase). Targets come from the batch: `boxes` (list of (M, 4) xyxy pixels
of the model input) and `box_labels` (list of (M,) indices into the text queries). Sigmoid focal
loss over every (query, text) pair makes several texts per box and no-object queries natural; box
losses are averaged over the number of target boxes in the batch, as in DETR.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

from ..heads.boxes import to_normalised_cxcywh
from ..heads.matcher import HungarianMatcher
from ..registry import LOSSES


def box_targets(batch: dict, device: torch.device) -> list[dict]:
    """Per image {labels (M,), boxes (M, 4) normalised cxcywh} from the batch's pixel boxes."""
    height, width = batch["image"].shape[-2:]
    targets = []
    for boxes, labels in zip(batch["boxes"], batch["box_labels"]):
        boxes = torch.as_tensor(boxes, dtype=torch.float32, device=device).reshape(-1, 4)
        labels = torch.as_tensor(labels, dtype=torch.int64, device=device).reshape(-1)
        targets.append({"labels": labels, "boxes": to_normalised_cxcywh(boxes, height, width)})
    return targets


@LOSSES.register_module()
class BoxSetLoss(nn.Module):
    """Reads `outputs["pred_logits"]` (B, Q, K) and `outputs["pred_boxes"]` (B, Q, 4) cxcywh."""

    def __init__(self, weight_class: float = 2.0, weight_l1: float = 5.0, weight_giou: float = 2.0,
                 focal_alpha: float = 0.25, focal_gamma: float = 2.0):
        super().__init__()
        self.matcher = HungarianMatcher(weight_class, weight_l1, weight_giou, focal_alpha, focal_gamma)
        self.weights = {"class": weight_class, "l1": weight_l1, "giou": weight_giou}
        self.alpha, self.gamma = focal_alpha, focal_gamma

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        logits, boxes = outputs["pred_logits"].float(), outputs["pred_boxes"].float()
        targets = box_targets(batch, logits.device)
        matches = self.matcher(logits, boxes, targets)
        num_boxes = max(sum(len(t["labels"]) for t in targets), 1)

        class_target = torch.zeros_like(logits)
        pred_boxes, true_boxes = [], []
        for b, (rows, cols) in enumerate(matches):
            class_target[b, rows.to(logits.device), targets[b]["labels"][cols]] = 1.0
            pred_boxes.append(boxes[b, rows])
            true_boxes.append(targets[b]["boxes"][cols])
        # Focal loss summed over every (query, text) and divided by the box count (DETR's norm).
        loss_class = sigmoid_focal_loss(logits, class_target, self.alpha, self.gamma,
                                        reduction="sum") / num_boxes
        pred_boxes, true_boxes = torch.cat(pred_boxes), torch.cat(true_boxes)
        loss_l1 = (pred_boxes - true_boxes).abs().sum() / num_boxes
        loss_giou = generalized_box_iou_loss(box_convert(pred_boxes, "cxcywh", "xyxy"),
                                             box_convert(true_boxes, "cxcywh", "xyxy"),
                                             reduction="sum") / num_boxes
        total = (self.weights["class"] * loss_class + self.weights["l1"] * loss_l1
                 + self.weights["giou"] * loss_giou)
        return {"loss": total, "box/class": loss_class.detach(), "box/l1": loss_l1.detach(),
                "box/giou": loss_giou.detach()}
