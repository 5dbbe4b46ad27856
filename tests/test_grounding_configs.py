"""The zero-shot grounding configs evaluate on ground / tiles their pre-training never saw."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from facetvlp.core.config import load_config
from facetvlp.core.eval.run import evaluator_configs
from facetvlp.core.registry import DATASETS, build

REPO = Path(__file__).resolve().parents[1]


def zoom19_column(chip: str) -> int:
    """OAM-{x}-{y}-{z}.tif -> the x of the zoom-19 web tile holding it."""
    _, x, _, zoom = Path(chip).stem.split("-")
    return int(x) >> (int(zoom) - 19)


def test_building_localisation_scores_only_eastern_chips_the_pretraining_never_saw(shared_data, monkeypatch):
    import facetvlp.domains.remote_sensing  # noqa: F401  (registers GeoSegDataset)

    monkeypatch.chdir(REPO)
    spec = importlib.util.spec_from_file_location("grounding_finetune", REPO / "benchmarks/grounding_finetune.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    pretrained_on = {Path(p).name for p in bench.WEST_Z21}
    assert pretrained_on and all(zoom19_column(p) < 309614 for p in pretrained_on)

    cfg = load_config(REPO / "configs/grounding/buildings_zeroshot_localization.py")
    scored = [s for _, e in evaluator_configs(cfg.eval) for s in e["dataset"]["scenes"]]
    chips = shared_data / "remote_sensing/kampala_chips_osm_buildings/chips"
    eastern = {p.name for p in chips.glob("OAM-*-2[01].tif") if zoom19_column(p.name) == 309614}
    assert {Path(s).name for s in scored} == eastern  # every eastern zoom-20/21 chip, nothing else
    assert not eastern & pretrained_on
    assert all(Path(s).exists() for s in scored)


def test_lidar_phrase_points_scores_tiles_the_pretraining_held_apart(shared_data, monkeypatch):
    import facetvlp.domains.pointcloud  # noqa: F401

    monkeypatch.chdir(REPO)
    pretrain = load_config(REPO / "configs/3d/lidar_captions_pointbert_tiny_cpu.py")
    grounding = load_config(REPO / "configs/grounding/lidar_phrase_points.py")
    trained = build(DATASETS, dict(pretrain.train_data.dataset, augment=None))
    trained_tiles = {trained.group_of(i) for i in range(len(trained))}
    for _, evaluator in evaluator_configs(grounding.eval):
        scored = build(DATASETS, evaluator["dataset"])
        tiles = {scored.group_of(i) for i in range(len(scored))}
        assert tiles and not tiles & trained_tiles
        assert scored.seg_classes == trained.seg_classes
