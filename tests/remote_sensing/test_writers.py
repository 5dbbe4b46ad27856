"""Georeferenced outputs: read back with rasterio / geopandas and compared with the inputs."""

from __future__ import annotations

import json

import geopandas
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.windows import Window

from facetvlp.domains.remote_sensing.geotiff import RasterSource, read_window
from facetvlp.domains.remote_sensing.samplers import GridTileSampler
from facetvlp.domains.remote_sensing.writers import (
    TiledPredictionWriter,
    class_raster_to_features,
    write_class_raster,
    write_geojson,
    write_probability_raster,
)

LANDSAT = "remote_sensing/landsat_geotiffs/RGB.byte.tif"
GOES = "remote_sensing/landsat_geotiffs/goes.tif"
CLASSES = ["dark", "mid", "bright"]


def _classify(sample):
    """Three brightness classes of band 1, nodata where the input is invalid."""
    band = sample["image"][0].numpy()
    classes = np.digitize(band, [0.2, 0.4]).astype(np.uint8)
    classes[~sample["mask"].numpy()] = 255
    return classes


def test_class_and_probability_rasters_keep_the_tile_georeference(tmp_path, shared_data):
    sample = read_window(shared_data / LANDSAT, (150, 120, 96, 80))
    classes = _classify(sample)
    out = write_class_raster(tmp_path / "classes.tif", classes, sample["meta"], CLASSES)
    with rasterio.open(shared_data / LANDSAT) as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs
        assert ds.transform == src.window_transform(Window(150, 120, 96, 80))
        np.testing.assert_array_equal(ds.read(1), classes)
        assert ds.nodata == 255
        assert ds.tags(1)["class_2"] == "bright"
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], size=(80, 96)).transpose(2, 0, 1)
    out = write_probability_raster(tmp_path / "probs.tif", probs, sample["meta"], CLASSES)
    with rasterio.open(out) as ds:
        np.testing.assert_allclose(ds.read(), probs.astype(np.float32))
        assert ds.descriptions == tuple(CLASSES)
        assert ds.crs == CRS.from_epsg(32618)
    with pytest.raises(ValueError, match="class names"):
        write_probability_raster(tmp_path / "bad.tif", probs, sample["meta"], CLASSES[:2])


def test_non_epsg_crs_survives_the_round_trip(tmp_path, shared_data):
    sample = read_window(shared_data / GOES, (100, 100, 32, 32))
    out = write_class_raster(tmp_path / "goes_classes.tif", _classify(sample), sample["meta"])
    with rasterio.open(shared_data / GOES) as src, rasterio.open(out) as ds:
        assert ds.crs == src.crs


def test_tiled_writer_stitches_overlapping_tiles_exactly(tmp_path, shared_data):
    scene = RasterSource(shared_data / LANDSAT)
    sampler = GridTileSampler([scene], 160, 112)  # overlapping, with snapped last row/col
    path = tmp_path / "stitched.tif"
    with TiledPredictionWriter(path, scene, count=1, dtype="uint8", nodata=None) as writer:
        for tile in sampler:
            # A "prediction" equal to the input band: stitched, it must give back the scene.
            pixels = scene.read(tile.window, [1]).data[0]
            writer.write(tile, pixels)
    with rasterio.open(shared_data / LANDSAT) as src, rasterio.open(path) as ds:
        assert ds.crs == src.crs and ds.transform == src.transform
        np.testing.assert_array_equal(ds.read(1), src.read(1))

    owner = tmp_path / "owner.tif"
    with TiledPredictionWriter(owner, scene, dtype="uint16", nodata=None) as writer:
        for index, tile in enumerate(sampler):
            writer.write(tile, np.full(tile.window[2:][::-1], index, dtype=np.uint16))
    with rasterio.open(owner) as ds:
        written = ds.read(1)
    expected = np.zeros(scene.shape, dtype=np.uint16)
    for index, tile in enumerate(sampler):
        col, row, width, height = tile.core
        expected[row:row + height, col:col + width] = index
    np.testing.assert_array_equal(written, expected)


def test_polygons_in_the_input_crs_with_exact_areas(tmp_path, shared_data):
    sample = read_window(shared_data / LANDSAT, (300, 300, 64, 48))
    classes = _classify(sample)
    features = class_raster_to_features(classes, sample["meta"], CLASSES)
    pixel_area = abs(sample["meta"]["transform"][0] * sample["meta"]["transform"][4])
    for class_id, name in enumerate(CLASSES):
        area = sum(g.area for g, p in features if p["class_id"] == class_id)
        assert area == pytest.approx((classes == class_id).sum() * pixel_area)
        assert all(p["class"] == name for g, p in features if p["class_id"] == class_id)
    path = write_geojson(tmp_path / "regions.geojson", features, sample["meta"])
    frame = geopandas.read_file(path)
    assert frame.crs == CRS.from_epsg(32618)
    assert len(frame) == len(features)
    footprint = shapely.box(*sample["meta"]["bounds"])
    assert frame.geometry.union_all().difference(footprint).area < 1e-6 * footprint.area
    raw = json.loads(open(path).read())
    assert raw["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32618"

    lonlat = write_geojson(tmp_path / "regions_4326.geojson", features, sample["meta"],
                           to_crs="EPSG:4326")
    frame4326 = geopandas.read_file(lonlat)
    assert frame4326.crs == CRS.from_epsg(4326)
    back = frame4326.to_crs(32618)
    assert back.geometry.area.sum() == pytest.approx(frame.geometry.area.sum(), rel=1e-3)


def test_geojson_with_a_crs_that_has_no_epsg_code(tmp_path, shared_data):
    sample = read_window(shared_data / GOES, (100, 100, 32, 32))
    features = class_raster_to_features(_classify(sample), sample["meta"], CLASSES)
    path = write_geojson(tmp_path / "goes.geojson", features, sample["meta"])
    frame = geopandas.read_file(path)
    assert CRS.from_user_input(frame.crs.to_wkt()) == CRS.from_wkt(sample["meta"]["crs"])
