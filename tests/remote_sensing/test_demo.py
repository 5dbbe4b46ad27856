"""The remote-sensing demo: its held-apart ground is never trained on, and end to end it writes a
segmentation overlay, a GeoTIFF on the source grid, GeoJSON polygons and boxes in lon/lat and a
picture of predicted and true boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from PIL import Image
from rasterio.warp import transform_bounds

from demo_support import figures_written_by_the_runs, run_domain_demo

from facetvlp.domains.remote_sensing.demo import (CHIPS, DATA, HELD_APART_ROWS, LANDCOVER, building_seg_config,
                                                  finetune_roi, held_apart_roi, prepare_box_chips)


def _boxes_of(folder):
    with rasterio.open(folder) as ds:
        return shapely.box(*ds.bounds)


def test_held_apart_ground_is_in_no_training_tile(tmp_path):
    from facetvlp.core.registry import DATASETS, build

    cfg = building_seg_config(tmp_path)
    train = build(DATASETS, cfg.train_data.dataset)
    held = build(DATASETS, cfg.eval.building_seg.dataset)
    area = shapely.box(*held_apart_roi())

    def ground(dataset, index):
        tile = dataset.sampler[dataset.tiles[index]]
        with rasterio.open(dataset.sources[tile.scene].path) as ds:
            return shapely.box(*rasterio.windows.bounds(rasterio.windows.Window(*tile.window), ds.transform))

    assert all(ground(train, i).intersection(area).area == 0 for i in range(len(train)))
    assert all(ground(held, i).within(area.buffer(1e-6)) for i in range(len(held)))
    # the box chips are cut from the same two regions
    prepare_box_chips(tmp_path)
    train_chips = sorted((tmp_path / "box_chips" / "train").glob("*.tif"))
    held_chips = sorted((tmp_path / "box_chips" / "held_apart").glob("*.tif"))
    assert len(held_chips) == len(held) and len(train_chips) > 3 * len(held_chips)
    assert all(_boxes_of(p).intersection(area).area == 0 for p in train_chips)
    assert all(_boxes_of(p).within(area.buffer(1e-6)) for p in held_chips)
    # the finetune region reaches the held-apart one without overlapping it
    assert finetune_roi()[3] == pytest.approx(held_apart_roi()[1])
    with rasterio.open(DATA / CHIPS[1]) as ds:
        assert held_apart_roi()[3] - held_apart_roi()[1] == pytest.approx(HELD_APART_ROWS * ds.res[1])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_domain_demo(tmp_path_factory, "remote_sensing")


@pytest.mark.slow
def test_run_demo_reports_zero_shot_segmentation_and_box_metrics(demo_run):
    work_dir, headline = demo_run
    assert set(headline) >= {"landcover/top1", "retrieval/i2t_R@5", "building_seg/miou",
                             "building_seg/iou_building", "building_boxes/ap50", "building_boxes/acc@0.5"}
    # every headline figure is the one its run wrote, under the name the step reports it by
    assert {k: v for k, v in headline.items() if k != "seconds"} == figures_written_by_the_runs(
        work_dir, "remote_sensing")
    assert headline["building_seg/n"] == 6


@pytest.mark.slow
def test_predicted_geotiff_sits_on_the_source_grid_and_matches_the_reported_iou(demo_run):
    work_dir, headline = demo_run
    tif = work_dir / "building_seg" / "buildings_pred.tif"
    with rasterio.open(DATA / CHIPS[1]) as source, rasterio.open(tif) as pred:
        assert pred.crs == source.crs and pred.transform == source.transform
        assert pred.shape == source.shape and pred.nodata == 255
        classes = pred.read(1)
    held, rest = classes[:HELD_APART_ROWS], classes[HELD_APART_ROWS:]
    assert set(np.unique(held)) <= {0, 1} and (rest == 255).all()  # predicted exactly the held-apart rows
    # Truth burnt independently with rasterio from the polygons: the building IoU of the file
    # equals the evaluator's pooled IoU up to the few columns where neighbouring tiles overlap.
    collection = json.loads((DATA / LANDCOVER).read_text())
    buildings = [f["geometry"] for f in collection["features"] if f["properties"]["source_class"] == "Building"]
    truth = rasterio.features.rasterize([(g, 1) for g in buildings], out_shape=classes.shape,
                                        transform=pred.transform, fill=0)[:HELD_APART_ROWS] == 1
    predicted = held == 1
    iou = (predicted & truth).sum() / max((predicted | truth).sum(), 1)
    assert iou == pytest.approx(headline["building_seg/iou_building"], abs=0.03)


@pytest.mark.slow
def test_geojson_outputs_are_lon_lat_on_the_held_apart_ground(demo_run):
    work_dir, _ = demo_run
    with rasterio.open(DATA / CHIPS[1]) as ds:
        area = shapely.box(*transform_bounds(ds.crs, "EPSG:4326", *held_apart_roi(), densify_pts=21))
    for path in (work_dir / "building_seg" / "buildings_pred.geojson",
                 work_dir / "building_boxes" / "building_boxes.geojson"):
        collection = json.loads(path.read_text())
        assert "crs" not in collection  # RFC 7946: lon/lat, no crs member
        for feature in collection["features"]:
            assert shapely.geometry.shape(feature["geometry"]).within(area.buffer(1e-7)), path.name
    boxes = json.loads((work_dir / "building_boxes" / "building_boxes.geojson").read_text())["features"]
    assert all(f["properties"]["text"] == "building" and f["properties"]["score"] >= 0.3 for f in boxes)


@pytest.mark.slow
def test_demo_writes_the_overlay_and_the_boxes_picture(demo_run):
    work_dir, _ = demo_run
    for png in (work_dir / "building_seg" / "building_seg_overlays.png",
                work_dir / "building_boxes" / "building_boxes_boxes.png"):
        with Image.open(png) as image:
            assert image.width > 300 and image.height > 200
    outputs = json.loads((work_dir / "outputs.json").read_text())
    assert outputs and all(Path(p).is_file() for p in outputs.values())
