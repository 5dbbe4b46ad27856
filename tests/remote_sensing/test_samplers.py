"""Grid and random tile samplers: exact coverage, ROIs in other CRSs, scenes in several CRSs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.warp import transform_geom

from facetvlp.core.errors import ConfigError
from facetvlp.domains.remote_sensing.geotiff import RasterSource
from facetvlp.domains.remote_sensing.samplers import GridTileSampler, RandomTileSampler

LANDSAT = "remote_sensing/landsat_geotiffs/RGB.byte.tif"
COG = "remote_sensing/landsat_geotiffs/cogeo.tif"
CHIP = "remote_sensing/kampala_chips_osm_buildings/chips/OAM-1238449-1046529-21.tif"


def _blank_scene(tmp_path, height, width, name="scene.tif"):
    path = tmp_path / name
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="uint8", crs="EPSG:32631",
                       transform=from_origin(500000, 5000000, 10, 10)) as ds:
        ds.write(np.zeros((1, height, width), np.uint8))
    return path


def _coverage(tiles, scene, shape, key):
    counts = np.zeros(shape, dtype=np.int32)
    for tile in tiles:
        if tile.scene != scene:
            continue
        col, row, width, height = getattr(tile, key)
        r0, c0 = max(row, 0), max(col, 0)
        counts[r0:row + height, c0:col + width] += 1
    return counts


@pytest.mark.parametrize("height,width,size,stride", [
    (100, 100, 25, 25),   # exact fit
    (103, 97, 25, 25),    # remainder: last row/col snapped
    (103, 97, 32, 20),    # overlap
    (64, 200, 64, 1),     # stride 1 along one axis
    (50, 50, 50, 17),     # scene = one tile
    (300, 41, (40, 16), (30, 16)),  # rectangular tiles
])
def test_grid_covers_every_pixel_once_by_cores(tmp_path, height, width, size, stride):
    sampler = GridTileSampler([_blank_scene(tmp_path, height, width)], size, stride)
    windows = [t.window for t in sampler]
    assert len(set(windows)) == len(windows), "a tile is duplicated"
    th, tw = (size, size) if np.isscalar(size) else size
    assert all(w[2:] == (tw, th) for w in windows)
    # windows stay in the scene and the last row/column ends exactly at the edge
    assert all(0 <= c and c + tw <= width and 0 <= r and r + th <= height for c, r, _, _ in windows)
    assert max(c + tw for c, _, _, _ in windows) == width
    assert max(r + th for _, r, _, _ in windows) == height
    assert (_coverage(sampler, 0, (height, width), "window") >= 1).all()
    np.testing.assert_array_equal(_coverage(sampler, 0, (height, width), "core"), 1)
    for tile in sampler:  # a core lies inside its window
        c, r, w, h = tile.window
        cc, cr, cw, ch = tile.core
        assert c <= cc and r <= cr and cc + cw <= c + w and cr + ch <= r + h


def test_grid_tile_count_matches_closed_form(shared_data):
    path = shared_data / LANDSAT
    sampler = GridTileSampler([path], 256, 200)
    with rasterio.open(path) as ds:
        rows = int(np.ceil((ds.height - 256) / 200)) + 1
        cols = int(np.ceil((ds.width - 256) / 200)) + 1
    assert len(sampler) == rows * cols


def test_scene_smaller_than_tile_gets_one_padded_tile(tmp_path):
    sampler = GridTileSampler([_blank_scene(tmp_path, 30, 20)], 64)
    assert [t.window for t in sampler] == [(0, 0, 64, 64)]
    assert sampler[0].core == (0, 0, 20, 30)
    sample = sampler.sources[0].read(sampler[0].window)
    assert sample.valid[:30, :20].all() and not sample.valid[30:].any()


def test_stride_larger_than_size_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="stride"):
        GridTileSampler([_blank_scene(tmp_path, 30, 20)], 8, 9)


def test_scenes_in_different_crss(shared_data):
    paths = [shared_data / LANDSAT, shared_data / COG, shared_data / CHIP]
    sampler = GridTileSampler(paths, 128, 96)
    crss = {str(s.crs) for s in sampler.sources}
    assert len(crss) == 3
    for index, path in enumerate(paths):
        with rasterio.open(path) as ds:
            shape = (ds.height, ds.width)
        np.testing.assert_array_equal(_coverage(sampler, index, shape, "core"), 1)


def test_roi_given_in_lonlat_over_utm_and_mercator_scenes(shared_data):
    paths = [shared_data / LANDSAT, shared_data / COG]
    # a lon/lat ROI inside the Landsat scene, away from the Mercator one
    with rasterio.open(paths[0]) as ds:
        left, bottom, right, top = ds.bounds
        utm_box = shapely.box(left + 40000, bottom + 50000, left + 120000, bottom + 90000)
    roi = shapely.geometry.shape(transform_geom("EPSG:32618", "EPSG:4326",
                                                shapely.geometry.mapping(utm_box)))
    roi = shapely.Polygon(roi.exterior.coords[:-1][::-1][:3])  # a triangle: not a rectangle
    sampler = GridTileSampler(paths, 32, roi=roi, roi_crs="EPSG:4326")
    assert sampler.tiles and all(t.scene == 0 for t in sampler)
    source = sampler.sources[0]
    roi_utm = shapely.geometry.shape(transform_geom("EPSG:4326", source.crs,
                                                    shapely.geometry.mapping(roi)))
    inside = rasterize([roi_utm], out_shape=source.shape, transform=source.transform) > 0
    cores = _coverage(sampler, 0, source.shape, "core")
    assert inside.sum() > 100
    assert (cores[inside] == 1).all(), "an ROI pixel is not covered exactly once"
    assert cores.max() == 1
    for tile in sampler:  # every kept tile touches the triangle itself
        box = shapely.box(*rasterio.windows.bounds(rasterio.windows.Window(*tile.window),
                                                   source.transform))
        assert box.intersects(roi_utm)
    assert len(sampler) < len(GridTileSampler(paths[:1], 32, roi=roi.envelope,
                                              roi_crs="EPSG:4326"))


def test_roi_missing_every_scene_gives_no_tiles(shared_data):
    sampler = GridTileSampler([shared_data / LANDSAT], 64, roi=(0.0, 0.0, 1.0, 1.0),
                              roi_crs="EPSG:4326")
    assert len(sampler) == 0
    with pytest.raises(ValueError, match="does not overlap"):
        RandomTileSampler([shared_data / LANDSAT], 64, 10, roi=(0.0, 0.0, 1.0, 1.0),
                          roi_crs="EPSG:4326")


def test_random_tiles_are_reproducible_and_inside(shared_data):
    paths = [shared_data / LANDSAT, shared_data / COG, shared_data / CHIP]
    sources = [RasterSource(p) for p in paths]
    sampler = RandomTileSampler(sources, 100, 300, seed=7)
    again = RandomTileSampler(sources, 100, 300, seed=7)
    tiles = list(sampler)
    assert tiles == list(again)
    assert len(set(tiles)) > 250
    for tile in tiles:
        height, width = sources[tile.scene].shape
        col, row, w, h = tile.window
        assert 0 <= col <= width - w and 0 <= row <= height - h
    sampler.set_epoch(1)
    assert list(sampler) != tiles
    # scenes are drawn in proportion to their area
    areas = np.array([s.shape[0] * s.shape[1] for s in sources], dtype=float)
    counts = np.bincount([t.scene for t in tiles], minlength=3)
    assert counts[np.argmax(areas)] == counts.max()
    assert counts[2] < counts[0] and counts[2] < counts[1]


def test_random_tiles_touch_the_roi(shared_data):
    path = shared_data / COG
    source = RasterSource(path)
    left, bottom, right, top = rasterio.windows.bounds(
        rasterio.windows.Window(0, 0, source.shape[1], source.shape[0]), source.transform)
    roi = shapely.Polygon([(left, bottom), (right, bottom), (left, top)])  # lower-left half
    sampler = RandomTileSampler([source], 64, 200, roi=roi, seed=3)
    for tile in sampler:
        box = shapely.box(*rasterio.windows.bounds(rasterio.windows.Window(*tile.window),
                                                   source.transform))
        assert box.intersects(roi)
