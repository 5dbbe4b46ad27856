"""The remote-sensing configs load and build their datasets and evaluators on the real data, and
`facetvlp inspect` reads the bundled OSM extracts through the CLI."""

from __future__ import annotations

import json
import os

import pytest

import facetvlp.domains.remote_sensing  # noqa: F401  (registers the remote-sensing types)
from facetvlp.core.config import load_config
from facetvlp.core.registry import DATASETS, EVALUATORS, build

CONFIGS = ["osm_captions_tiny_cpu.py", "osm_captions_vit_small.py"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_its_data(repo_root, shared_data, tmp_path, monkeypatch, name):
    monkeypatch.chdir(repo_root)  # config paths are relative to the repository root
    cfg = load_config(str(repo_root / "configs/remote_sensing" / name))
    dataset_cfg = dict(cfg.train_data.dataset, cache_dir=str(tmp_path))
    pairs = build(DATASETS, dataset_cfg)
    assert len(pairs) > 0 and all(pairs.entries[0]["captions"].values())
    for position, eval_cfg in enumerate(cfg.eval):
        if "cache_dir" in eval_cfg.get("dataset", {}):
            eval_cfg = dict(eval_cfg, dataset=dict(eval_cfg["dataset"], cache_dir=str(tmp_path)))
        evaluator = build(EVALUATORS, eval_cfg, where=f"{name}: eval[{position}]")
        assert len(evaluator.dataset) > 0
    rsscn7 = build(EVALUATORS, cfg.eval[0]).dataset
    assert len(rsscn7.classes) == 7 and len(rsscn7) == 91


def test_cli_inspect_reads_the_bundled_osm_extracts(repo_root, capsys):
    from facetvlp.cli import main

    for name, nodes in (("aguascalientes.osm.pbf", 3083), ("West-Oakland.osm.bz2", 446)):
        path = repo_root / "data/remote_sensing/osm" / name
        assert main(["inspect", os.fspath(path)]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["kind"] == "osm" and summary["elements"]["node"] == nodes  # PROVENANCE
