"""The medical demo runs on the bundled samples only and reports its headline metrics."""

from __future__ import annotations

import json
import math

import pytest

from facetvlp.domains.medical.datasets import CXRFolderDataset
from facetvlp.domains.medical.demo import CLASSES, DATA, demo_config, run_demo


def test_bundled_samples_and_provenance_are_there():
    files = {cls: sorted(p.name for p in (DATA / cls).glob("*.png")) for cls in CLASSES}
    assert len(files["normal"]) == 16 and len(files["tuberculosis"]) == 16
    assert all(name.endswith("_0.png") for name in files["normal"])  # the sets' own naming convention
    assert all(name.endswith("_1.png") for name in files["tuberculosis"])
    assert "MIT" in (DATA / "LICENCE_repo.txt").read_text()
    assert "rochadiego/MultiResUNet-lung-segmentation" in (DATA / "PROVENANCE.txt").read_text()


def test_demo_split_holds_out_both_classes(tmp_path):
    cfg = demo_config(tmp_path)
    train = CXRFolderDataset(**{k: v for k, v in cfg.train_data.dataset.items() if k not in ("type",)})
    val = CXRFolderDataset(**{k: v for k, v in cfg.eval[0].dataset.items() if k not in ("type",)})
    assert len(train) + len(val) == 32
    assert {r.path.name for r in train.records}.isdisjoint(r.path.name for r in val.records)
    assert all(count > 0 for count in val.label_counts().values())


@pytest.mark.slow
def test_run_demo_trains_evaluates_and_writes_outputs(tmp_path):
    headline = run_demo(tmp_path / "medical")
    assert headline["tb_cxr/n"] == 9
    for key in ("tb_cxr/top1", "tb_cxr/balanced_accuracy", "tb_cxr/majority_baseline", "tb_cxr/auc"):
        assert 0.0 <= headline[key] <= 1.0
    assert math.isfinite(headline["train/loss"])
    assert json.loads((tmp_path / "medical" / "headline.json").read_text()) == headline
    metrics = json.loads((tmp_path / "medical" / "metrics.json").read_text())
    steps = demo_config(tmp_path).schedule.max_steps
    assert metrics["train/steps"] == steps and metrics["tb_cxr/top1"] == headline["tb_cxr/top1"]
