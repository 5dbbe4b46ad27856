"""Every 3D config loads, and its point tower and datasets build (no training here)."""

from __future__ import annotations

from pathlib import Path

import pytest

import facetvlp.domains.pointcloud  # noqa: F401  (registers the 3D types)
from facetvlp.core.config import load_config
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
    datasets = [e.dataset for e in cfg.get("eval", [])]
    if "train_data" in cfg:
        datasets.append(cfg.train_data.dataset)
    for ds_cfg in datasets:
        dataset = build(DATASETS, ds_cfg)
        assert len(dataset) > 0 and dataset.classes


ZERO_SHOT = sorted(p for p in CONFIGS if p.stem.startswith(
    ("ulip_pointbert_minilm_zeroshot_cpu", "ulip_pointbert_minilm_attributes_cpu",
     "ulip_pointbert_minilm_combined_cpu")))


def test_zero_shot_configs_cover_three_recipes_on_three_splits():
    assert len(ZERO_SHOT) == 9
    splits = {tuple(sorted(load_config(p).eval[0].dataset.classes)) for p in ZERO_SHOT}
    assert len(splits) == 3


@pytest.mark.parametrize("path", ZERO_SHOT, ids=[p.stem for p in ZERO_SHOT])
def test_zero_shot_splits_hold_classes_out(path):
    cfg = load_config(path)
    unseen = set(cfg.eval[0].dataset.classes)
    assert cfg.eval[0].name == "unseen" and len(unseen) == 3
    assert not unseen & set(cfg.train_data.dataset.classes)
    assert unseen | set(cfg.train_data.dataset.classes) == set(cfg.eval[2].dataset.classes)
    # unseen classes are prompted from knowledge the training taught, never by name alone
    assert cfg.eval[0].knowledge.prompts in ("describe", "attributes")
