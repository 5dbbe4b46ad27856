"""Box metrics: COCO mAP@[.5:.95] / AP50 (torchmetrics, pycocotools backend) and phrase-grounding
Acc@0.5 (torchvision IoU). Boxes are xyxy in one pixel grid for predictions and truth alike."""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou


def detection_ap(predictions: Sequence[dict], targets: Sequence[dict]) -> dict[str, float]:
    """COCO-style AP over images. predictions: {boxes, scores, labels}; targets: {boxes, labels}.

    Returns map (IoU .50:.95), map_50, map_75 and mar_100; a class with no true box anywhere
    is left out of the mean (COCO's convention), -1 when no class has any.
    """
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
    metric.update([{k: torch.as_tensor(v).cpu() for k, v in p.items()} for p in predictions],
                  [{k: torch.as_tensor(v).cpu() for k, v in t.items()} for t in targets])
    found = metric.compute()
    return {name: float(found[name]) for name in ("map", "map_50", "map_75", "mar_100")}


def grounding_accuracy(predictions: Sequence[dict], targets: Sequence[dict], iou: float = 0.5) -> float:
    """Acc@iou of phrase grounding: for every (image, text) that has true boxes, the single
    highest-scoring predicted box for that text is a hit when it overlaps any of its true boxes
    by at least `iou`. A text with no prediction at all is a miss."""
    hits = total = 0
    for pred, true in zip(predictions, targets):
        for label in torch.as_tensor(true["labels"]).unique().tolist():
            total += 1
            mine = torch.as_tensor(pred["labels"]) == label
            if not mine.any():
                continue
            scores = torch.as_tensor(pred["scores"])[mine]
            best = torch.as_tensor(pred["boxes"])[mine][scores.argmax()].reshape(1, 4).float()
            truth = torch.as_tensor(true["boxes"])[torch.as_tensor(true["labels"]) == label].float()
            hits += int(box_iou(best, truth).max() >= iou)
    return hits / total if total else float("nan")
