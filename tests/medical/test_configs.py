"""The medical configs load, name only registered types, and the benchmark pair differs only in text."""

from __future__ import annotations

from pathlib import Path

import pytest

import facetvlp.core  # noqa: F401
import facetvlp.domains.medical  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.registry import ALL_REGISTRIES
from facetvlp.core.registry import registered as registered_names

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "medical").glob("*.py"))


def types_in(node, found=None):
    found = [] if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.append(node["type"])
        for value in node.values():
            types_in(value, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            types_in(value, found)
    return found


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_names_registered_types(path):
    cfg = load_config(path)
    registered = {name for registry in ALL_REGISTRIES.values() for name in registered_names(registry)}
    names = types_in(cfg.to_dict())
    assert names and set(names) <= registered, set(names) - registered
    assert cfg.work_dir.startswith("work_dirs/medical/")
    assert cfg.eval


def test_benchmark_pair_differs_only_in_training_text():
    faceted = load_config(CONFIGS[0].parent / "pneumonia_faceted_tiny_cpu.py").to_dict()
    baseline = load_config(CONFIGS[0].parent / "pneumonia_label_prompt_tiny_cpu.py").to_dict()
    assert faceted["train_data"]["dataset"].pop("text") == "facets"
    assert baseline["train_data"]["dataset"].pop("text") == "label"
    faceted["train_data"]["dataset"].pop("knowledge"), baseline["train_data"]["dataset"].pop("knowledge")
    for cfg in (faceted, baseline):
        cfg.pop("work_dir"), cfg.pop("config_file")
    assert faceted == baseline


def test_frozen_text_variant_freezes_the_text_tower():
    cfg = load_config(CONFIGS[0].parent / "cxr_faceted_pretrain_mimic_frozen_text.py")
    assert cfg.model.trainable.text == "none" and cfg.model.proj.text == "none"
    assert cfg.model.towers.text.type == "HFTextTower"
