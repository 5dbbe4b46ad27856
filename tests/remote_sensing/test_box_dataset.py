"""Building boxes from real OSM footprints over real Kampala chips: pixel boxes agree with the
footprints, and predicted boxes written as GeoJSON land on the same buildings in lon/lat."""

from __future__ import annotations

import json

import pytest
import rasterio
import shapely
import torch

from facetvlp.domains.remote_sensing.box_dataset import FootprintBoxDataset, read_footprints
from facetvlp.domains.remote_sensing.seg_labels import VectorLabelError
from facetvlp.domains.remote_sensing.writers import write_box_geojson


@pytest.fixture
def kampala(shared_data):
    root = shared_data / "remote_sensing" / "kampala_chips_osm_buildings"
    if not root.is_dir():
        pytest.skip("kampala chips not in shared data")
    return root


def chip_with_whole_buildings(data: FootprintBoxDataset, kampala):
    """A chip index and its footprints that lie wholly inside it (not clipped by the edge)."""
    for index, path in enumerate(data.paths):
        with rasterio.open(path) as ds:
            chip = shapely.box(*ds.bounds)
        polygons, _ = read_footprints(kampala / "labels" / f"{path.stem}.geojson")
        inside = [p for p in polygons if chip.buffer(-1e-7).contains(p)]
        if len(inside) >= 1 and len(inside) == len(polygons):
            return index, inside, chip
    pytest.skip("no chip whose buildings are all inside it")


def test_boxes_are_the_footprints_pixel_bounds(kampala):
    data = FootprintBoxDataset(kampala / "chips", kampala / "labels")  # native 256 px
    index, polygons, chip = chip_with_whole_buildings(data, kampala)
    item = data[index]
    with rasterio.open(data.paths[index]) as ds:  # rasterio's own inverse transform as reference
        expected = []
        for polygon in polygons:
            x0, y0, x1, y1 = polygon.bounds
            rows, cols = rasterio.transform.rowcol(ds.transform, [x0, x1], [y1, y0], op=lambda v: v)
            expected.append([cols[0], rows[0], cols[1], rows[1]])
    got = sorted(item["boxes"].tolist())
    assert len(got) == len(expected)
    for box, ref in zip(got, sorted(expected)):
        assert box == pytest.approx(ref, abs=1e-3)
    assert item["box_labels"].tolist() == [0] * len(polygons)
    assert data.queries == ["building"]


def test_predicted_boxes_land_on_the_same_buildings_in_lon_lat(kampala, tmp_path):
    data = FootprintBoxDataset(kampala / "chips", kampala / "labels", image_size=128)
    index, polygons, chip = chip_with_whole_buildings(data, kampala)
    item = data[index]
    assert item["image"].shape == (3, 128, 128) and item["meta"]["shape"] == [128, 128]
    # "predict" exactly the true boxes and write them back
    out = write_box_geojson(tmp_path / "boxes.geojson", item["boxes"], torch.ones(len(item["boxes"])),
                            item["box_labels"], data.queries, item["meta"])
    written = json.loads(open(out).read())
    assert "crs" not in written  # RFC 7946: lon/lat WGS84, no crs member
    lon_lat = sorted(shapely.geometry.shape(f["geometry"]).bounds for f in written["features"])
    truth = sorted(p.bounds for p in polygons)
    pixel = (chip.bounds[2] - chip.bounds[0]) / 128  # degrees per resampled pixel
    for got, ref in zip(lon_lat, truth):
        assert got == pytest.approx(ref, abs=1e-9 + 1e-6 * pixel)
        # lon first: Kampala is at lon 32.59 E, lat 0.35 N
        assert 32.5 < got[0] < 32.7 and 0.3 < got[1] < 0.4
    assert all(f["properties"]["text"] == "building" for f in written["features"])


def test_a_broken_label_file_is_a_typed_error(kampala, tmp_path):
    (tmp_path / "labels").mkdir()
    chip = sorted((kampala / "chips").glob("*.tif"))[0]
    (tmp_path / "labels" / f"{chip.stem}.geojson").write_text("{not json")
    data = FootprintBoxDataset([chip], tmp_path / "labels")
    with pytest.raises(VectorLabelError, match="not a vector file"):
        data[0]


def test_groups_make_a_spatial_split_across_zoom_levels(kampala):
    from facetvlp.domains.remote_sensing.box_dataset import xyz_group

    assert xyz_group("OAM-1238448-1046528-21", 19) == "309612-261632"  # 1238448 >> 2, 1046528 >> 2
    assert xyz_group("OAM-619226-523265-20", 19) == "309613-261632"
    assert xyz_group("not-a-tile", 19) == "not-a-tile"
    east = FootprintBoxDataset(str(kampala / "chips" / "*.tif"), kampala / "labels",
                               groups=["309614-261632", "309614-261633"])
    west = FootprintBoxDataset(str(kampala / "chips" / "*.tif"), kampala / "labels",
                               groups=["309612-261632", "309612-261633", "309613-261632", "309613-261633"])
    assert len(east) + len(west) == 118
    east_bounds = [rasterio.open(p).bounds for p in east.paths]
    west_bounds = [rasterio.open(p).bounds for p in west.paths]
    # every eastern chip lies east of every western chip: no ground on both sides
    assert min(b.left for b in east_bounds) >= max(b.right for b in west_bounds) - 1e-9
