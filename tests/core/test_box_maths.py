"""Box maths of the grounding heads against independent references: brute-force assignment,
closed-form IoU / GIoU / focal values, pycocotools' own COCOeval and hand-made AP cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from facetvlp.core.eval.detection_metrics import detection_ap, grounding_accuracy
from facetvlp.core.heads.boxes import rescale_xyxy, to_normalised_cxcywh, to_pixel_xyxy
from facetvlp.core.heads.matcher import HungarianMatcher
from facetvlp.core.heads.owl_box import OWLBoxHead, grid_box_bias, token_grid
from facetvlp.core.losses.boxes import BoxSetLoss


def random_cxcywh(n: int, generator: torch.Generator) -> torch.Tensor:
    centre = 0.2 + 0.6 * torch.rand(n, 2, generator=generator)
    size = 0.05 + 0.3 * torch.rand(n, 2, generator=generator)
    return torch.cat([centre, size], 1)


@pytest.mark.parametrize("seed", range(6))
def test_hungarian_matching_is_the_brute_force_optimum(seed):
    g = torch.Generator().manual_seed(seed)
    queries, targets, classes = 6, 3, 4
    logits = torch.randn(1, queries, classes, generator=g)
    boxes = random_cxcywh(queries, g)[None]
    target = {"labels": torch.randint(classes, (targets,), generator=g), "boxes": random_cxcywh(targets, g)}
    matcher = HungarianMatcher()
    rows, cols = matcher(logits, boxes, [target])[0]
    cost = matcher.cost_matrix(logits[0], boxes[0], target["labels"], target["boxes"])
    # every injective assignment of the 3 targets to 6 predictions
    brute = min(sum(float(cost[q, m]) for m, q in enumerate(choice))
                for choice in itertools.permutations(range(queries), targets))
    assert sorted(cols.tolist()) == list(range(targets))
    assert float(cost[rows, cols].sum()) == pytest.approx(brute, rel=1e-6)


def iou_giou_by_hand(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    union = area(a) + area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return inter / union, inter / union - (hull - union) / hull


def test_box_loss_parts_equal_closed_form_values():
    # one image 100 x 200 (h x w), one true box; the matched prediction is offset by hand
    true_px = torch.tensor([[20.0, 10.0, 60.0, 50.0]])
    pred_px = torch.tensor([[30.0, 10.0, 70.0, 60.0]])
    batch = {"image": torch.zeros(1, 3, 100, 200), "boxes": [true_px], "box_labels": [torch.tensor([1])]}
    pred = to_normalised_cxcywh(pred_px, 100, 200)
    # a second, far-away query must stay unmatched; class logits favour query 0 for text 1
    far = torch.tensor([[0.9, 0.9, 0.05, 0.05]])
    logits = torch.tensor([[[-2.0, 3.0], [-4.0, -4.0]]])
    outputs = {"pred_logits": logits, "pred_boxes": torch.cat([pred, far])[None]}
    parts = BoxSetLoss(weight_class=2, weight_l1=5, weight_giou=2)(outputs, batch)

    true_n = to_normalised_cxcywh(true_px, 100, 200)[0].tolist()
    pred_n = pred[0].tolist()
    l1 = sum(abs(p - t) for p, t in zip(pred_n, true_n))
    _, giou = iou_giou_by_hand(pred_px[0].tolist(), true_px[0].tolist())

    def focal(x, y, alpha=0.25, gamma=2.0):
        p = 1 / (1 + math.exp(-x))
        ce = -(y * math.log(p) + (1 - y) * math.log(1 - p))
        p_t = p * y + (1 - p) * (1 - y)
        return (alpha * y + (1 - alpha) * (1 - y)) * ce * (1 - p_t) ** gamma

    targets = [[0.0, 1.0], [0.0, 0.0]]
    focal_sum = sum(focal(logits[0, q, k].item(), targets[q][k]) for q in range(2) for k in range(2))
    assert float(parts["box/l1"]) == pytest.approx(l1, rel=1e-5)
    assert float(parts["box/giou"]) == pytest.approx(1 - giou, rel=1e-5)
    assert float(parts["box/class"]) == pytest.approx(focal_sum, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(2 * focal_sum + 5 * l1 + 2 * (1 - giou), rel=1e-5)


def test_box_loss_is_zero_on_perfect_boxes_and_handles_images_without_boxes():
    true_px = torch.tensor([[4.0, 4.0, 20.0, 12.0]])
    batch = {"image": torch.zeros(2, 3, 32, 32), "boxes": [true_px, torch.zeros(0, 4)],
             "box_labels": [torch.tensor([0]), torch.zeros(0, dtype=torch.int64)]}
    boxes = to_normalised_cxcywh(true_px, 32, 32).repeat(2, 1)[:, None]
    outputs = {"pred_logits": torch.full((2, 1, 1), -9.0, requires_grad=True), "pred_boxes": boxes}
    parts = BoxSetLoss()(outputs, batch)
    assert float(parts["box/l1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(parts["box/giou"]) == pytest.approx(0.0, abs=1e-6)
    parts["loss"].backward()  # the class term still teaches: the true text scored -9 on its box
    assert outputs["pred_logits"].grad[0, 0, 0] < 0


def test_box_conventions_round_trip_and_rescale():
    boxes = torch.tensor([[3.0, 5.0, 40.0, 17.0], [0.0, 0.0, 64.0, 48.0]])
    assert torch.allclose(to_pixel_xyxy(to_normalised_cxcywh(boxes, 48, 64), 48, 64), boxes, atol=1e-5)
    # model input 48 x 64 back to a source radiograph of 2827 x 2840 (TBX11K-like)
    moved = rescale_xyxy(boxes, (48, 64), (2827, 2840))
    assert moved[1].tolist() == pytest.approx([0.0, 0.0, 2840.0, 2827.0])


def test_untrained_owl_head_proposes_each_token_its_own_grid_cell():
    rows, cols = token_grid(12, 48, 64)
    assert (rows, cols) == (3, 4)
    head = OWLBoxHead(width=8)
    out = head(torch.randn(2, 12, 8), (48, 64))
    boxes = out["pred_boxes"][0]
    # token 5 is row 1, col 1: centre (1.5/4, 1.5/3), size (1/4, 1/3)
    assert boxes[5].tolist() == pytest.approx([1.5 / 4, 1.5 / 3, 0.25, 1 / 3], abs=1e-5)
    assert torch.sigmoid(grid_box_bias(rows, cols)).shape == (12, 4)
    with pytest.raises(ValueError):
        token_grid(13, 48, 64)


def coco_reference(predictions, targets) -> tuple[float, float]:
    """mAP and AP50 straight from pycocotools' COCOeval (xywh boxes, its own bookkeeping)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (pred, true) in enumerate(zip(predictions, targets)):
        images.append({"id": image_id, "width": 200, "height": 200})
        for box, label in zip(true["boxes"].tolist(), true["labels"].tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": label,
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        for box, label, score in zip(pred["boxes"].tolist(), pred["labels"].tolist(), pred["scores"].tolist()):
            results.append({"image_id": image_id, "category_id": label, "score": score,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    truth = COCO()
    truth.dataset = {"images": images, "annotations": annotations,
                     "categories": [{"id": c} for c in range(3)]}
    truth.createIndex()
    evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


def test_ap_on_hand_made_cases():
    truth = [{"boxes": torch.tensor([[0.0, 0, 10, 10]]), "labels": torch.tensor([0])}]
    # a false positive ranked above the true positive: precision 1/2 at recall 1 -> AP 0.5
    pred = [{"boxes": torch.tensor([[50.0, 50, 60, 60], [0, 0, 10, 10]]),
             "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 0])}]
    assert detection_ap(pred, truth)["map_50"] == pytest.approx(0.5, abs=1e-6)
    # ranked the other way round the false positive costs nothing
    pred[0]["scores"] = torch.tensor([0.7, 0.8])
    assert detection_ap(pred, truth)["map_50"] == pytest.approx(1.0, abs=1e-6)
    # IoU 80/120 = 0.667 (box shifted by 2 of 10): a hit at .50 .. .65, a miss from .70 -> 4/10
    pred = [{"boxes": torch.tensor([[2.0, 0, 12, 10]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
    found = detection_ap(pred, truth)
    assert found["map_50"] == pytest.approx(1.0, abs=1e-6)
    assert found["map"] == pytest.approx(0.4, abs=1e-6)


def test_ap_equals_pycocotools_on_random_detections():
    g = torch.Generator().manual_seed(7)
    predictions, targets = [], []
    for _ in range(5):
        n_true = int(torch.randint(1, 4, (1,), generator=g))
        xy = torch.rand(n_true, 2, generator=g) * 150
        true = torch.cat([xy, xy + 10 + torch.rand(n_true, 2, generator=g) * 40], 1)
        labels = torch.randint(3, (n_true,), generator=g)
        jitter = torch.randn(n_true, 4, generator=g) * 4
        noise_xy = torch.rand(3, 2, generator=g) * 150
        noise = torch.cat([noise_xy, noise_xy + 20], 1)
        predictions.append({"boxes": torch.cat([true + jitter, noise]),
                            "scores": torch.rand(n_true + 3, generator=g),
                            "labels": torch.cat([labels, torch.randint(3, (3,), generator=g)])})
        targets.append({"boxes": true, "labels": labels})
    ours = detection_ap(predictions, targets)
    reference_map, reference_ap50 = coco_reference(predictions, targets)
    assert ours["map"] == pytest.approx(reference_map, abs=1e-4)
    assert ours["map_50"] == pytest.approx(reference_ap50, abs=1e-4)


def test_grounding_accuracy_takes_the_top_box_per_text():
    truth = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]]), "labels": torch.tensor([0, 1])}]
    pred = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [60, 60, 70, 70], [20, 20, 40, 40]]),
             "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 1, 1])}]
    # text 0: top box is right; text 1: its top box (0.8) misses although a lower one would hit
    assert grounding_accuracy(pred, truth) == pytest.approx(0.5)
    pred[0]["scores"] = torch.tensor([0.9, 0.6, 0.7])
    assert grounding_accuracy(pred, truth) == pytest.approx(1.0)
    assert np.isnan(grounding_accuracy([pred[0]], [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0)}]))
