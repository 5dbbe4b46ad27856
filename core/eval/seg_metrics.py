"""Segmentation metrics: per-image Dice, IoU and HD95 (MONAI) and a dataset-pooled IoU.

Conventions (also in docs/architecture.md):
- Labels are class indices; -1 marks ignored positions, which count in neither the prediction
  nor the truth.
- Per image and class, Dice and IoU follow MONAI's `ignore_empty=True`: NaN when the truth has no
  pixel of the class (whatever was predicted), and NaNs are left out of every mean.
- HD95 (MONAI, 95th percentile of symmetric surface distances) is NaN when the truth or the
  prediction of the class is empty; in `spacing` units when given, else pixels.
- Pooled IoU sums one confusion matrix over the whole dataset (the remote-sensing mIoU): false
  positives on images without the class count there.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou

IGNORE = -1


def one_hot(labels: torch.Tensor, num_classes: int, valid: torch.Tensor) -> torch.Tensor:
    """(B, *S) class indices -> (B, K, *S) float one-hot, all-zero where `valid` is False."""
    encoded = F.one_hot(labels.long().clamp(min=0), num_classes).movedim(-1, 1)
    return (encoded * valid.unsqueeze(1)).float()


def per_image_scores(pred: torch.Tensor, truth: torch.Tensor, num_classes: int,
                     hd95: bool = True, spacing: Sequence[Sequence[float]] | None = None
                     ) -> dict[str, torch.Tensor]:
    """Per image and class: {"dice", "iou"[, "hd95"]} -> (B, K) tensors, NaN where undefined."""
    valid = truth != IGNORE
    pred_oh, truth_oh = one_hot(pred, num_classes, valid), one_hot(truth, num_classes, valid)
    scores = {
        "dice": compute_dice(pred_oh, truth_oh, include_background=True, ignore_empty=True),
        "iou": compute_iou(pred_oh, truth_oh, include_background=True, ignore_empty=True),
    }
    if hd95 and pred.ndim >= 3:  # surfaces exist in 2D and 3D, not on a list of points
        with warnings.catch_warnings():  # MONAI warns on every empty class; the NaN says it
            warnings.simplefilter("ignore")
            distances = compute_hausdorff_distance(pred_oh, truth_oh, include_background=True,
                                                   percentile=95, spacing=spacing)
        scores["hd95"] = torch.where(torch.isinf(distances), torch.nan, distances).float()
    return scores


def confusion(pred: torch.Tensor, truth: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts, rows = truth, columns = prediction; ignored positions left out."""
    valid = truth != IGNORE
    index = truth[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def pooled_iou(matrix: torch.Tensor) -> torch.Tensor:
    """(K,) IoU from a confusion matrix; NaN for a class absent from truth and prediction."""
    matrix = matrix.double()
    tp = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.nan)
