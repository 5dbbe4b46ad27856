"""The 3D demo end to end: pre-trains, evaluates zero-shot, fine-tunes per-point segmentation,
draws the held-apart tiles and writes a LAS that laspy reads back with every point kept."""

from __future__ import annotations

import json

import laspy
import numpy as np
import pytest
from PIL import Image

from demo_support import figures_written_by_the_runs, run_domain_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_domain_demo(tmp_path_factory, "pointcloud")


@pytest.mark.slow
def test_demo_runs_and_reports(demo_run):
    work_dir, headline = demo_run
    assert set(headline) >= {"lidar_tiles/top1", "lidar_tiles/balanced_accuracy", "lidar_seg/miou"}
    # every headline figure is the one its run wrote, under the name the step reports it by
    assert {k: v for k, v in headline.items() if k != "seconds"} == figures_written_by_the_runs(work_dir, "pointcloud")
    metrics = json.loads((work_dir / "pretrain" / "metrics.json").read_text())
    assert metrics["train/steps"] == 60 and "lidar_tiles/top1" in metrics
    assert (work_dir / "pretrain" / "lidar_tiles_confusion.png").exists()
    seg = json.loads((work_dir / "lidar_seg" / "metrics.json").read_text())
    assert seg["lidar_seg/n"] == headline["lidar_seg/n"] > 0
    assert "encoder initialised from" in (work_dir / "lidar_seg" / "run.log").read_text()


@pytest.mark.slow
def test_predicted_las_keeps_every_point_and_attribute(demo_run):
    from facetvlp.domains.pointcloud.demo import CLASSES, DEMO_FILE

    work_dir, _ = demo_run
    source, pred = laspy.read(DEMO_FILE), laspy.read(work_dir / "lidar_seg" / "lidar_pred.las")
    assert pred.header.point_count == source.header.point_count
    assert pred.header.point_format.id == source.header.point_format.id
    assert pred.header.parse_crs() == source.header.parse_crs()
    for name in ("X", "Y", "Z", "intensity", "gps_time", "return_number"):
        assert np.array_equal(np.asarray(pred[name]), np.asarray(source[name])), name
    classes = np.asarray(pred.classification)
    assert set(np.unique(classes)) <= set(CLASSES)  # every point got a predicted class
    # better than chance on the points whose true class is one of the three
    known = np.isin(np.asarray(source.classification), CLASSES)
    assert (classes[known] == np.asarray(source.classification)[known]).mean() > 1 / len(CLASSES)


@pytest.mark.slow
def test_demo_draws_the_held_apart_tiles(demo_run):
    work_dir, _ = demo_run
    with Image.open(work_dir / "lidar_seg" / "lidar_seg_overlay.png") as picture:
        assert picture.width > 500 and picture.height > 300
