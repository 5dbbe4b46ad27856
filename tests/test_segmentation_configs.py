"""The per-domain segmentation configs build their model and datasets on the real data, their
encoder has the same tensors (names and shapes) as the tower of the pre-training config it is
fine-tuned from, the validation split shares no group with the training split, and a label
fraction keeps whole groups."""

from __future__ import annotations

import pytest
import torch

from facetvlp.core.collate import Collator
from facetvlp.core.config import load_config
from facetvlp.core.registry import DATASETS, MODELS, TOWERS, build
from facetvlp.domains import load_all

load_all()  # registers the domain datasets, towers and models

# segmentation config -> (pre-training config, tower name in both)
CONFIGS = {
    "lung_cxr_resnet10t_cpu.py": ("medical/pneumonia_faceted_tiny_cpu.py", "image"),
    "kampala_buildings_resnet18_cpu.py": ("remote_sensing/osm_captions_tiny_cpu.py", "image"),
    "lidar_asprs_pointbert_cpu.py": ("3d/ulip_pointbert_tiny_cpu.py", "points"),
}


def tensor_shapes(module: torch.nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_segmentation_config_builds_and_matches_its_pretraining_tower(repo_root, shared_data,
                                                                      monkeypatch, name):
    monkeypatch.chdir(repo_root)  # config paths are relative to the repository root
    cfg = load_config(str(repo_root / "configs/segmentation" / name))
    pretraining, tower = CONFIGS[name]
    pre_cfg = load_config(str(repo_root / "configs" / pretraining))

    model = build(MODELS, cfg.model)
    pre_tower = build(TOWERS, pre_cfg.model.towers[tower])
    assert tensor_shapes(model.towers[tower]) == tensor_shapes(pre_tower)

    train = build(DATASETS, cfg.train_data.dataset)
    val = build(DATASETS, cfg.eval["seg"]["dataset"])
    inner = train.dataset
    train_groups = {inner.group_of(i) for i in range(len(inner))}
    val_groups = {val.group_of(i) for i in range(len(val))}
    assert train_groups and val_groups and not train_groups & val_groups

    tenth = build(DATASETS, dict(cfg.train_data.dataset, fraction=0.1, seed=1))
    kept = {inner.group_of(i) for i in tenth.indices}
    assert 0 < len(kept) == max(1, round(0.1 * len(train_groups)))
    # whole groups: every item of a kept group is in, nothing else
    assert len(tenth) == sum(inner.group_of(i) in kept for i in range(len(inner)))

    batch = Collator()([train[0], train[1]])
    model.eval()
    with torch.no_grad():
        out = model.predict(batch)
    assert out["seg"].shape == batch["seg"].shape
    assert out["seg_logits"].shape[1] == cfg.model.num_classes == len(val.seg_classes)
