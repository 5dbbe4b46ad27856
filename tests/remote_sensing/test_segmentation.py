"""Segmentation targets and georeferenced predictions on real data, checked against rasterio and
shapely brute force: Kampala drone chips with their OSM footprints and masks, Massachusetts
buildings (GeoPackage, EPSG:26986), the Dubai colour-coded land-cover masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import rasterio.transform
import shapely
import torch
from PIL import Image
from rasterio.warp import transform_geom

from facetvlp.core.errors import ConfigError
from facetvlp.domains.remote_sensing.colour_mask_dataset import (
    DUBAI_COLOURS,
    ColourMaskDataset,
    decode_colour_mask,
)
from facetvlp.domains.remote_sensing.geotiff import RasterSource, read_window, resize_sample
from facetvlp.domains.remote_sensing.seg_dataset import GeoSegDataset, web_tile
from facetvlp.domains.remote_sensing.seg_labels import (
    VectorLabelError,
    rasterize_labels,
    read_label_window,
    read_vector_labels,
)
from facetvlp.domains.remote_sensing.writers import (
    ScenePredictionWriter,
    write_prediction_polygons,
    write_tile_prediction,
)

KAMPALA = "remote_sensing/kampala_chips_osm_buildings"
MASS = "remote_sensing/aerial_buildings/massachusetts_buildings_kaggle"
DUBAI = "remote_sensing/dubai_aerial_landcover_seg/Semantic segmentation dataset"
KNOWN_WAY = 614901937  # an OSM building way in the Kampala footprints, inside chip z20 619229/523264


def _known_building(shared_data):
    """The OSM footprint of KNOWN_WAY (lon/lat) and a z20 chip that holds all of it."""
    fc = json.loads((shared_data / KAMPALA / "aoi_labels.geojson").read_text())
    building = next(shapely.geometry.shape(f["geometry"]) for f in fc["features"]
                    if f["properties"].get("osm_id") == KNOWN_WAY)
    for chip in sorted((shared_data / KAMPALA / "chips").glob("*-20.tif")):
        with rasterio.open(chip) as ds:
            if shapely.box(*ds.bounds).contains(building):
                return building, chip
    raise AssertionError("no z20 chip holds the known building")


def _pixel_centres(ds):
    rows, cols = np.mgrid[0:ds.height, 0:ds.width]
    xs, ys = rasterio.transform.xy(ds.transform, rows.ravel(), cols.ravel())
    return np.asarray(xs), np.asarray(ys)


def test_known_osm_building_lands_on_its_ground_in_geotiff_and_geojson(shared_data, tmp_path):
    building, chip = _known_building(shared_data)
    dataset = GeoSegDataset([str(chip)], ["background", "building"],
                            vector_labels=str(shared_data / KAMPALA / "aoi_labels.geojson"), image_size=128)
    sample = dataset[0]
    assert sample["seg"].shape == (128, 128)  # the model grid: half the chip's resolution
    prediction = sample["seg"].numpy().astype(np.uint8)  # stands in for a model's output

    tif = write_tile_prediction(tmp_path / "pred.tif", prediction, sample["meta"], dataset.seg_classes)
    with rasterio.open(chip) as src, rasterio.open(tif) as out:
        assert out.crs == src.crs and out.shape == src.shape and out.nodata == 255
        assert out.transform.almost_equals(src.transform, precision=1e-12)  # the source grid
        written = out.read(1)
        point = building.representative_point()
        row, col = out.index(point.x, point.y)
        assert written[row, col] == 1
        # every pixel against a shapely brute force over all OSM footprints on the chip: a
        # misplaced write (one tile pixel off) would break far more than the resampled edges
        fc = json.loads((shared_data / KAMPALA / "aoi_labels.geojson").read_text())
        xs, ys = _pixel_centres(out)
        truth = np.logical_or.reduce([shapely.contains_xy(shapely.geometry.shape(f["geometry"]), xs, ys)
                                      for f in fc["features"]]).reshape(out.shape)
        inside_known = shapely.contains_xy(building, xs, ys).reshape(out.shape)
    assert (written == truth).mean() > 0.98
    assert written[inside_known].mean() > 0.95

    geojson = write_prediction_polygons(tmp_path / "pred.geojson", prediction, sample["meta"],
                                        dataset.seg_classes)
    collection = json.loads(open(geojson).read())
    assert "crs" not in collection  # RFC 7946: lon/lat, CRS84 implied
    polygons = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    assert {f["properties"]["class"] for f in collection["features"]} == {"building"}
    lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0]
    assert 32.5 < lon < 32.7 and 0.3 < lat < 0.4  # longitude first
    predicted = shapely.union_all(polygons)
    assert predicted.intersection(building).area / building.area > 0.9
    assert any(p.contains(building.representative_point()) for p in polygons)


def test_mask_rasters_match_rasterio_and_resized_meta_is_the_resized_grid(shared_data):
    chips = shared_data / KAMPALA / "chips"
    dataset = GeoSegDataset(str(chips), ["background", "building"],
                            label_rasters=str(shared_data / KAMPALA / "binarymasks" / "{stem}.mask.tif"))
    for index in (0, 57, len(dataset) - 1):
        sample = dataset[index]
        stem = sample["meta"]["source"].rsplit("/", 1)[-1][:-4]
        with rasterio.open(shared_data / KAMPALA / "binarymasks" / f"{stem}.mask.tif") as ds:
            np.testing.assert_array_equal(sample["seg"].numpy(), ds.read(1).astype(np.int64))
    # resized: the meta transform is the one rasterio computes for the same bounds at 64 x 64
    sample = read_window(next(chips.glob("*.tif")))
    bounds = list(sample["meta"]["bounds"])
    resized = resize_sample(sample, (64, 64))["meta"]
    expected = rasterio.transform.from_bounds(*bounds, 64, 64)
    np.testing.assert_allclose(resized["transform"], list(expected)[:6], rtol=0, atol=1e-12)
    assert resized["shape"] == [64, 64] and resized["window"] == [0.0, 0.0, 256.0, 256.0]


def test_groups_hold_every_zoom_of_the_same_ground(shared_data):
    chips = shared_data / KAMPALA / "chips"
    kwargs = dict(seg_classes=["background", "building"], group_zoom=19,
                  label_rasters=str(shared_data / KAMPALA / "binarymasks" / "{stem}.mask.tif"))
    train, val = GeoSegDataset(str(chips), split="train", **kwargs), GeoSegDataset(str(chips), split="val", **kwargs)
    train_groups = {train.group_of(i) for i in range(len(train))}
    val_groups = {val.group_of(i) for i in range(len(val))}
    assert train_groups and val_groups and not train_groups & val_groups
    assert len(train) + len(val) == 118
    # a z21 chip's group is its z19 parent tile (x, y >> 2): chip names are OAM-x-y-z
    for i in range(len(train)):
        name = train[i]["meta"]["source"].rsplit("/", 1)[-1]
        _, x, y, z = name[:-4].split("-")
        shift = int(z) - 19
        assert train.group_of(i) == f"z19/{int(x) >> shift}/{int(y) >> shift}"
    assert web_tile(0.0, 0.0, 1) == (1, 1)


def test_rasterize_matches_a_point_in_polygon_brute_force(shared_data):
    labels, crs = read_vector_labels(shared_data / MASS / "22978945_15.gpkg", class_field="class")
    with rasterio.open(shared_data / MASS / "22978945_15_uint8_clipped.tif") as ds:
        burnt = rasterize_labels(labels, crs, ds.shape, ds.transform, ds.crs)
        rng = np.random.default_rng(0)
        rows, cols = rng.integers(0, ds.height, 300), rng.integers(0, ds.width, 300)
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols)
    union = shapely.union_all([g for g, _ in labels])
    expected = shapely.contains_xy(union, np.asarray(xs), np.asarray(ys)).astype(np.int64)
    np.testing.assert_array_equal(burnt[rows, cols], expected)
    assert 0.05 < burnt.mean() < 0.95  # buildings and ground both present on the chip


def test_vectors_in_another_crs_are_reprojected_to_the_raster(shared_data, tmp_path):
    labels, crs = read_vector_labels(shared_data / MASS / "22978945_15.gpkg")
    lonlat = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": transform_geom(crs, "EPSG:4326", shapely.geometry.mapping(g))}
        for g, _ in labels]}
    (tmp_path / "buildings_4326.geojson").write_text(json.dumps(lonlat))
    reprojected, crs4326 = read_vector_labels(tmp_path / "buildings_4326.geojson")
    assert crs4326.to_epsg() == 4326
    with rasterio.open(shared_data / MASS / "22978945_15_uint8_clipped.tif") as ds:
        direct = rasterize_labels(labels, crs, ds.shape, ds.transform, ds.crs)
        via = rasterize_labels(reprojected, crs4326, ds.shape, ds.transform, ds.crs)
    assert (direct == via).mean() > 0.995


def test_label_raster_on_another_grid_is_warped_onto_the_tile(shared_data):
    """A z21 mask read onto its z20 parent chip's grid covers exactly one quarter of it."""
    z20 = shared_data / KAMPALA / "chips" / "OAM-619225-523264-20.tif"
    z21_mask = shared_data / KAMPALA / "binarymasks" / "OAM-1238450-1046528-21.mask.tif"
    with rasterio.open(z20) as ds:
        values = read_label_window(z21_mask, ds.shape, ds.transform, ds.crs)
    covered = values >= 0
    assert covered[:128, :128].all() and not covered[128:, :].any() and not covered[:, 128:].any()
    with rasterio.open(z21_mask) as ds:
        fine = ds.read(1)
    assert abs(values[:128, :128].mean() - fine.mean()) < 0.02


def test_tiles_stitch_back_into_the_scene(shared_data, tmp_path):
    scene = shared_data / MASS / "22978945_15_uint8_clipped.tif"
    kwargs = dict(seg_classes=["background", "building"],
                  vector_labels=str(shared_data / MASS / "22978945_15.gpkg"))
    labels, labels_crs = read_vector_labels(shared_data / MASS / "22978945_15.gpkg")
    with rasterio.open(scene) as src:
        full = rasterize_labels(labels, labels_crs, src.shape, src.transform, src.crs)
    tiled = GeoSegDataset([str(scene)], sampler=dict(type="GridTileSampler", size=64, stride=48),
                          image_size=32, **kwargs)
    with ScenePredictionWriter(tmp_path / "scene.tif", RasterSource(scene), tiled.seg_classes) as writer:
        for i in range(len(tiled)):
            sample = tiled[i]
            tile = tiled.sampler[tiled.tiles[i]]
            writer.write(tile, np.where(sample["seg"].numpy() < 0, 255, sample["seg"].numpy()), sample["meta"])
    with rasterio.open(tmp_path / "scene.tif") as out, rasterio.open(scene) as src:
        assert out.transform == src.transform and out.crs == src.crs
        stitched = out.read(1).astype(np.int64)
        assert out.tags(1)["class_1"] == "building"
    assert (stitched != 255).all()  # every pixel got a prediction
    assert (stitched == full).mean() > 0.9  # 2x down and up: building edges move a pixel


def test_dubai_colour_masks(shared_data):
    root = shared_data / DUBAI
    mask = np.asarray(Image.open(root / "Tile 1" / "masks" / "image_part_001.png").convert("RGB"))
    crop = mask[:40, :40]
    decoded = decode_colour_mask(crop, [tuple(int(c.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
                                        for c in DUBAI_COLOURS.values()])
    names = list(DUBAI_COLOURS)
    for (r, c), value in np.ndenumerate(decoded):  # brute force, pixel by pixel
        hexcode = "#%02X%02X%02X" % tuple(crop[r, c])
        expected = names.index(next(n for n, h in DUBAI_COLOURS.items() if h == hexcode)) \
            if hexcode in DUBAI_COLOURS.values() else -1
        assert value == expected
    train, val = ColourMaskDataset(root, split="train"), ColourMaskDataset(root, split="val")
    assert not {train.group_of(i) for i in range(len(train))} & {val.group_of(i) for i in range(len(val))}
    assert len(train) + len(val) == 36
    sample = train[0]
    assert sample["image"].shape == (3, 256, 256) and sample["seg"].dtype == torch.int64
    assert set(sample["seg"].unique().tolist()) <= {-1, 0, 1, 2, 3, 4}


def test_bad_label_inputs_are_clear_errors(shared_data, tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        GeoSegDataset(str(shared_data / MASS / "22978945_15_uint8_clipped.tif"), ["bg", "building"])
    with pytest.raises(VectorLabelError, match="no field 'kind'"):
        read_vector_labels(shared_data / MASS / "22978945_15.gpkg", class_field="kind")
    (tmp_path / "notes.geojson").write_text("not json")
    with pytest.raises(VectorLabelError, match="notes.geojson"):
        read_vector_labels(tmp_path / "notes.geojson")
