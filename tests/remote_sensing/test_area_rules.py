"""Closed ways: area or line, as the iD editor decides from its presets (the bundled schema)."""

from __future__ import annotations

import pytest

from facetvlp.domains.remote_sensing.osm import closed_way_is_area
from facetvlp.domains.remote_sensing.presets import LINE_KEYS, PresetIndex, area_keys


@pytest.mark.parametrize("tags, is_area", [
    ({"highway": "services"}, True),  # iD: areas although highway is a line key (issue 10)
    ({"highway": "rest_area"}, True),
    ({"railway": "station"}, True),
    ({"waterway": "dam"}, True),
    ({"highway": "residential", "junction": "roundabout"}, False),
    ({"leisure": "track"}, False),  # leisure is an area key, track one of its line values
    ({"leisure": "park"}, True),
    ({"natural": "coastline"}, False),
    ({"natural": "water"}, True),
    ({"waterway": "river"}, False),
    ({"barrier": "fence"}, False),
    ({"building": "yes"}, True),
    ({"name": "Somewhere"}, False),  # no area key at all: a ring, not a surface
    ({"highway": "pedestrian", "area": "yes"}, True),
    ({"leisure": "park", "area": "no"}, False),
])
def test_closed_ways_like_id(tags, is_area):
    assert closed_way_is_area(tags) is is_area


def test_area_keys_follow_the_presets_geometry():
    index = PresetIndex.default()
    keys = area_keys()
    assert not LINE_KEYS & set(keys)
    for preset in index.presets.values():
        if preset.id.startswith("@templates") or not preset.tags:
            continue
        first, value = next(iter(preset.tags.items()))
        if first in keys and value != "*" and preset.geometry == ("area",):
            # an area-only preset of an area key is never taken for a line...
            assert value not in keys[first] or any(
                "line" in other.geometry and (other.add_tags or other.tags).get(first) == value
                for other in index.presets.values()), preset.id
        if first in keys and value != "*" and "line" in preset.geometry:
            # ...and a preset that may be drawn as a line makes its value a line value
            assert value in keys[first], preset.id
