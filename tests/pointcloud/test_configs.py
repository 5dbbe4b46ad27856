"""Every 3D config loads, and its point tower and datasets build (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest

import facetvlp.domains.pointcloud  # noqa: F401  (registers the 3D types)
from facetvlp.core.config import load_config
from facetvlp.core.eval.run import evaluator_configs
from facetvlp.core.registry import DATASETS, TOWERS, build

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "3d").glob("*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_builds(path, shared_data, monkeypatch):
    monkeypatch.chdir(REPO)  # dataset roots are relative to the repository root
    cfg = load_config(path)
    towers = cfg.model.towers
    if "points" in towers:
        tower = build(TOWERS, towers.points)
        assert tower.modality == "points"
    datasets = [e["dataset"] for _, e in evaluator_configs(cfg.get("eval"))]
    if "train_data" in cfg:
        datasets.append(cfg.train_data.dataset)
    for ds_cfg in datasets:
        dataset = build(DATASETS, ds_cfg)
        assert len(dataset) > 0 and dataset.classes


ZERO_SHOT = sorted(p for p in CONFIGS if p.stem.startswith(
    ("ulip_pointbert_minilm_zeroshot_cpu", "ulip_pointbert_minilm_attributes_cpu",
     "ulip_pointbert_minilm_combined_cpu", "ulip_pointbert_minilm_names_cpu")))


def evaluators(path: Path) -> dict:
    return {e["name"]: e for _, e in evaluator_configs(load_config(path).eval)}


def test_zero_shot_configs_cover_four_recipes_on_five_splits():
    assert len(ZERO_SHOT) == 20
    splits = {tuple(sorted(evaluators(p)["unseen"]["dataset"]["classes"])) for p in ZERO_SHOT}
    assert len(splits) == 5
    # C, D and E are the random draws their configs name
    import random

    classes = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa",
               "table", "toilet"]  # ModelNet10, sorted
    for letter, seed in (("c", 2026), ("d", 2027), ("e", 2028)):
        for recipe in ("zeroshot", "attributes", "combined", "names"):
            path = REPO / f"configs/3d/ulip_pointbert_minilm_{recipe}_cpu_split{letter}.py"
            assert evaluators(path)["unseen"]["dataset"]["classes"] == sorted(
                random.Random(seed).sample(classes, 3))


@pytest.mark.parametrize("path", ZERO_SHOT, ids=[p.stem for p in ZERO_SHOT])
def test_zero_shot_splits_hold_classes_out(path):
    cfg = load_config(path)
    found = evaluators(path)
    assert list(found) == ["unseen", "seen_val", "all10_val", "unseen_names"]
    unseen = set(found["unseen"]["dataset"]["classes"])
    seen = set(cfg.train_data.dataset.classes)
    assert len(unseen) == 3 and not unseen & seen
    assert set(found["seen_val"]["dataset"]["classes"]) == seen
    assert set(found["all10_val"]["dataset"]["classes"]) == seen | unseen
    # "unseen" prompts from knowledge, never by name alone; "unseen_names" is the name baseline
    # on the same classes, so every run is scored both ways
    assert found["unseen"]["knowledge"]["prompts"] in ("describe", "attributes")
    assert found["unseen_names"]["knowledge"]["prompts"] == "name"
    assert found["unseen_names"]["dataset"]["classes"] == found["unseen"]["dataset"]["classes"]
    # the names recipe learns from class names alone: no shape descriptions in its captions
    taught = cfg.train_data.dataset.knowledge
    assert taught["descriptions"] is (not path.stem.startswith("ulip_pointbert_minilm_names"))


def test_ulip_trimodal_config_freezes_the_image_text_teacher(tmp_path):
    # ULIP trains the point tower against a frozen image-text model: with local image weights
    # the image tower keeps them, takes no gradient, has no optimizer slot and stays in eval mode
    import torch
    from safetensors.torch import save_file

    from facetvlp.core.engine.trainer import build_optimizer
    from facetvlp.core.registry import MODELS

    cfg = load_config(REPO / "configs/3d/ulip_pointbert_points_text_image.py")
    donor = build(TOWERS, dict(cfg.model.towers.image))
    weights = {k: torch.randn_like(v) for k, v in donor.model.state_dict().items()}
    save_file(weights, str(tmp_path / "vit.safetensors"))
    cfg.model.towers.image.checkpoint = str(tmp_path / "vit.safetensors")
    model = build(MODELS, cfg.model)
    image, points, text = (model.towers[m] for m in ("image", "points", "text"))
    assert image.frozen and text.frozen and not points.frozen
    key = "blocks.0.attn.qkv.weight"
    assert torch.equal(image.model.state_dict()[key], weights[key])
    optimizer = build_optimizer(model, dict(cfg.optim))
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not any(id(p) in in_optimizer for p in image.parameters())
    assert all(id(p) in in_optimizer for p in points.parameters())
    model.train()
    assert not image.training and points.training
    # and the point tower has Point-BERT's layout, so published weights fit it
    assert points.reduce_dim is not None and points.transformer[0].attn.qkv.bias is None
