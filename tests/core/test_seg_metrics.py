"""Segmentation metrics against values worked out by hand on tiny masks, the empty-mask
convention, the ignore label, and the evaluator's metrics and plots."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import facetvlp.core  # noqa: F401
from facetvlp.core.data import SampleDataset
from facetvlp.core.eval.seg_metrics import confusion, per_image_scores, pooled_iou
from facetvlp.core.eval.segmentation import SegmentationEvaluator

# 4 x 4, three classes. Truth: class 1 = the left half (8 px), class 2 = pixel (3, 3).
TRUTH = torch.tensor([[1, 1, 0, 0],
                      [1, 1, 0, 0],
                      [1, 1, 0, 0],
                      [1, 1, 0, 2]])
# Prediction: class 1 = the first three columns of the top three rows (9 px), class 2 = (0, 3).
PRED = torch.tensor([[1, 1, 1, 2],
                     [1, 1, 1, 0],
                     [1, 1, 1, 0],
                     [0, 0, 0, 0]])


def test_dice_iou_and_hd95_match_hand_computed_values():
    scores = per_image_scores(PRED[None], TRUTH[None], 3)
    # class 1: |P|=9, |T|=8, |P and T|=6 -> Dice 12/17, IoU 6/11
    # class 0: |T|=7 (right half minus (3,3)), |P|=6 (3 px right col rows 1-2 + row 3 first 4 minus..)
    truth0, pred0 = TRUTH == 0, PRED == 0
    inter0, p0, t0 = int((truth0 & pred0).sum()), int(pred0.sum()), int(truth0.sum())
    assert (inter0, p0, t0) == (3, 6, 7)  # (1,3), (2,3), (3,2)
    assert scores["dice"][0].tolist() == pytest.approx([6 / 13, 12 / 17, 0.0])
    assert scores["iou"][0].tolist() == pytest.approx([3 / 10, 6 / 11, 0.0])
    # class 2: one pixel each, (0, 3) vs (3, 3): every surface distance is 3 -> HD95 = 3
    assert float(scores["hd95"][0, 2]) == pytest.approx(3.0)


def test_hd95_is_in_spacing_units():
    spaced = per_image_scores(PRED[None], TRUTH[None], 3, spacing=[[2.0, 0.5]])
    assert float(spaced["hd95"][0, 2]) == pytest.approx(6.0)  # 3 rows apart, 2 mm each


def test_empty_masks_follow_the_stated_convention():
    truth = torch.zeros(1, 4, 4, dtype=torch.long)  # no class 1, no class 2
    pred = torch.zeros(1, 4, 4, dtype=torch.long)
    pred[0, 0, 0] = 2  # a false positive of class 2
    scores = per_image_scores(pred, truth, 3)
    # class 1 empty in both, class 2 empty in truth: undefined (NaN) per image, whatever was predicted
    assert scores["dice"][0, 0] == pytest.approx(2 * 15 / 31)
    assert math.isnan(scores["dice"][0, 1]) and math.isnan(scores["dice"][0, 2])
    assert math.isnan(scores["hd95"][0, 1]) and math.isnan(scores["hd95"][0, 2])
    # pooled over the dataset, the false positive counts: IoU 0 for class 2, class 1 undefined
    iou = pooled_iou(confusion(pred, truth, 3))
    assert iou[0] == pytest.approx(15 / 16) and iou[2] == 0.0 and math.isnan(iou[1])


def test_ignored_pixels_count_nowhere():
    truth = TRUTH.clone()
    truth[3] = -1  # the bottom row is unlabelled
    pred = PRED.clone()
    scores = per_image_scores(pred[None], truth[None], 3)
    pred[3] = 1  # whatever is predicted there
    again = per_image_scores(pred[None], truth[None], 3)
    torch.testing.assert_close(scores["dice"], again["dice"], equal_nan=True)
    # class 1 within rows 0-2: |P|=9, |T|=6, inter 6 -> 12/15
    assert float(scores["dice"][0, 1]) == pytest.approx(12 / 15)
    assert confusion(pred[None], truth[None], 3).sum() == 12


class MaskDataset(SampleDataset):
    seg_classes = ["background", "left", "dot"]

    def __init__(self, truths):
        super().__init__()
        self.truths = truths

    def __len__(self):
        return len(self.truths)

    def load(self, index):
        return {"image": torch.rand(1, 4, 4), "seg": self.truths[index], "meta": {"spacing": [1.0, 1.0]}}


class FixedPredictions(nn.Module):
    """Predicts given masks in dataset order (what a trained model would output)."""

    def __init__(self, preds):
        super().__init__()
        self.preds, self.seen = preds, 0

    def predict(self, batch):
        out = torch.stack(self.preds[self.seen : self.seen + batch["size"]])
        self.seen += batch["size"]
        return {"seg": out}


def test_evaluator_averages_over_images_and_writes_plots(tmp_path):
    empty_truth = torch.zeros(4, 4, dtype=torch.long)
    dataset = MaskDataset([TRUTH, empty_truth])
    evaluator = SegmentationEvaluator(dataset, include_background=False, batch_size=1, name="lung")
    result = evaluator(FixedPredictions([PRED, empty_truth]), "cpu", tmp_path)
    # image 2 has no class 1 or 2: they are left out, so the means are image 1's values
    assert result["lung/dice/left"] == pytest.approx(12 / 17)
    assert result["lung/dice/dot"] == pytest.approx(0.0)
    assert result["lung/mdice"] == pytest.approx((12 / 17 + 0.0) / 2)
    assert result["lung/dice/background"] == pytest.approx((6 / 13 + 1.0) / 2)
    assert result["lung/iou/left"] == pytest.approx(6 / 11)
    assert result["lung/hd95/dot"] == pytest.approx(3.0)
    assert result["lung/n"] == 2
    assert result["lung/iou_pooled/left"] == pytest.approx(6 / 11)
    json.dumps(result)  # undefined values are null, never NaN
    for plot in ("lung_class_scores.png", "lung_overlays.png"):
        assert (tmp_path / plot).stat().st_size > 1000


def test_evaluator_reports_undefined_as_none(tmp_path):
    empty = torch.zeros(4, 4, dtype=torch.long)
    result = SegmentationEvaluator(MaskDataset([empty]), batch_size=1)(
        FixedPredictions([empty]), "cpu", tmp_path)
    assert result["seg/dice/left"] is None and result["seg/iou_pooled/dot"] is None
    assert result["seg/dice/background"] == pytest.approx(1.0)
