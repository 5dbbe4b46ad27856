"""The 3D demo end to end (about 15 s on 2 cores): trains, evaluates, writes its outputs."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_demo_runs_and_reports(tmp_path):
    from facetvlp.domains.pointcloud.demo import run_demo

    headline = run_demo(tmp_path)
    assert set(headline) >= {"lidar_tiles/top1", "lidar_tiles/balanced_accuracy"}
    assert 0.0 <= headline["lidar_tiles/top1"] <= 1.0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train/steps"] == 60 and "lidar_tiles/top1" in metrics
    assert (tmp_path / "lidar_tiles_confusion.png").exists()
