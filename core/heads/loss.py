"""SegmentationLoss: Dice + cross-entropy (MONAI's DiceCELoss recipe) with the -1 = ignore rule.

MONAI's `DiceCELoss` applies its softmax inside and has no ignore index, so the two parts are
composed here: MONAI `DiceLoss` on softmax probabilities and one-hot targets with the ignored
positions zeroed in both (they add nothing to any class's intersection or sums), and
cross-entropy with `ignore_index=-1`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn

from ..registry import LOSSES

IGNORE = -1


@LOSSES.register_module()
class SegmentationLoss(nn.Module):
    """Reads `outputs["seg_logits"]` (B, K, *spatial) and `batch["seg"]` (B, *spatial) int64."""

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0,
                 include_background: bool = True, batch_dice: bool = False,
                 smooth: float = 1e-5):
        super().__init__()
        self.dice_weight, self.ce_weight = dice_weight, ce_weight
        self.dice = DiceLoss(include_background=include_background, batch=batch_dice,
                             smooth_nr=smooth, smooth_dr=smooth)

    def forward(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
        logits = outputs["seg_logits"].float()
        target = batch["seg"].long()
        valid = (target != IGNORE).unsqueeze(1)
        onehot = F.one_hot(target.clamp(min=0), logits.shape[1]).movedim(-1, 1) * valid
        dice = self.dice(logits.softmax(1) * valid, onehot.to(logits.dtype))
        if valid.any():
            ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
        else:  # a batch with nothing labelled teaches nothing (and CE's mean would be 0/0)
            ce = logits.sum() * 0.0
        total = self.dice_weight * dice + self.ce_weight * ce
        return {"loss": total, "dice": dice.detach(), "ce": ce.detach()}
