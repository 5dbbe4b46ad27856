"""iD preset matching and naming, and the scene-class prompts built on them.

References: the raw iD schema files (presets.json, translations/*.min.json) read here with json,
and a brute-force scan over every raw preset.
"""

from __future__ import annotations

import json

import pytest

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import KNOWLEDGE, build
from facetvlp.domains.remote_sensing.knowledge import (
    TEMPLATES,
    OSMSceneKnowledge,
    normalise_class_name,
)
from facetvlp.domains.remote_sensing.osm import read_osm
from facetvlp.domains.remote_sensing.presets import (
    LANGUAGES,
    PACKAGED_PRESETS,
    PresetIndex,
    compact_schema,
)

RSSCN7 = ["aGrass", "bField", "cIndustry", "dRiverLake", "eForest", "fResident", "gParking"]


@pytest.fixture(scope="module")
def schema(shared_data):
    return shared_data / "remote_sensing" / "osm_tagging_schema"


@pytest.fixture(scope="module")
def raw_presets(schema):
    return json.loads((schema / "presets.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def translations(schema):
    return {
        lang: json.loads((schema / "translations" / f"{lang}.min.json").read_text("utf-8"))[lang][
            "presets"]["presets"]
        for lang in LANGUAGES
    }


@pytest.fixture(scope="module")
def index():
    return PresetIndex.default()


def test_packaged_presets_are_current_and_carry_the_isc_notice(schema):
    packaged = json.loads(PACKAGED_PRESETS.read_text(encoding="utf-8"))
    assert packaged == compact_schema(schema)
    assert "ISC License" in packaged["notice"] and "iD Contributors" in packaged["notice"]
    licence = (schema / "LICENSE.md").read_text()
    assert "Copyright (c) iD Contributors" in licence


def test_names_and_terms_in_seven_languages_come_from_the_translations(index, translations):
    for pid in ("landuse/forest", "building/house", "amenity/parking", "natural/water/lake"):
        for lang in LANGUAGES:
            assert index[pid].name(lang) == translations[lang][pid]["name"]
    assert "woods" in index["landuse/forest"].synonyms("en")
    assert "Wald" not in index["landuse/forest"].synonyms("de")  # iD stores terms in lower case
    assert "wald" in index["landuse/forest"].synonyms("de")
    # a preset that borrows its words from another one
    assert index["amenity/university"].name("en") == translations["en"]["education/university"][
        "name"]


def _brute_force_best(raw_presets, tags, geometries):
    """Best preset over every raw preset, scored as iD documents it."""
    best, best_score = None, 0.0
    for pid, preset in sorted(raw_presets.items()):
        location = preset.get("locationSet", {}).get("include")
        if location and not {"Planet", "001"} & set(location):
            continue
        if not preset["tags"] or any("*" in k for k in preset["tags"]):
            continue
        if not set(geometries) & set(preset["geometry"]):
            continue
        base = preset.get("matchScore", 1.0)
        score = 0.0
        for key, value in preset["tags"].items():
            if tags.get(key) == value:
                score += base
            elif value == "*" and key in tags:
                score += base / 2
            else:
                score = -1
                break
        if score < 0:
            continue
        for key, value in preset.get("addTags", {}).items():
            if key not in preset["tags"] and tags.get(key) == value:
                score += base
        if preset.get("searchable") is False:
            score *= 0.999
        if score > best_score:
            best, best_score = pid, score
    return best, best_score


def test_match_equals_brute_force_on_real_osm_tags(index, raw_presets, shared_data):
    layer = read_osm(shared_data / "remote_sensing/osm_extracts/osmnx/aguascalientes.osm.pbf")
    geometries = {"point": ("point", "vertex"), "line": ("line",), "area": ("area",)}
    checked = 0
    for feature in layer.features[::3]:
        found = index.match(feature.tags, feature.kind)
        expected, score = _brute_force_best(raw_presets, feature.tags, geometries[feature.kind])
        # ties go to the alphabetically first id in both
        assert (found.id if found else None) == expected
        if found is not None:
            assert found.score(feature.tags) == pytest.approx(score)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("tags, kind, expected", [
    ({"building": "yes"}, "area", "building"),
    ({"building": "house"}, "area", "building/house"),
    ({"landuse": "forest"}, "area", "landuse/forest"),
    ({"natural": "water", "water": "lake"}, "area", "natural/water/lake"),
    ({"highway": "residential", "name": "Kuja"}, "line", "highway/residential"),
    ({"amenity": "parking", "parking": "surface"}, "area", "amenity/parking"),
    ({"highway": "crossing", "crossing": "traffic_signals"}, "point",
     "highway/crossing/traffic_signals"),
])
def test_match_known_tags(index, tags, kind, expected):
    assert index.match(tags, kind).id == expected


def test_geometry_decides(index):
    # a residential road is a line preset: as an area it is at best a generic highway
    area = index.match({"highway": "residential"}, "area")
    assert area is None or area.id != "highway/residential"
    assert index.match({"foo": "bar"}, "area") is None


def test_search_by_name_and_synonym(index):
    assert index.search("Managed Forest")[0].id == "landuse/forest"
    assert "natural/wood" in [p.id for p in index.search("wald", "de")]


def test_normalise_class_names():
    assert [normalise_class_name(c) for c in RSSCN7] == [
        "grass", "field", "industry", "river lake", "forest", "resident", "parking"]
    assert normalise_class_name("SeaLake") == "sea lake"
    assert normalise_class_name("storage_tanks") == "storage tanks"
    assert normalise_class_name("denseresidential") == "denseresidential"  # UC Merced
    assert normalise_class_name("AnnualCrop") == "annual crop"  # EuroSAT
    assert normalise_class_name("HerbaceousVegetation") == "herbaceous vegetation"
    assert normalise_class_name("basketball_court") == "basketball court"  # RESISC45
    assert normalise_class_name("road-bridge/overpass") == "road bridge overpass"
    assert normalise_class_name("Level2Road") == "level2 road"  # digits stay: classes stay apart


def test_class_prompts_in_every_language(index, translations):
    knowledge = build(KNOWLEDGE, {"type": "OSMSceneKnowledge"})
    for lang in LANGUAGES:
        prompts = knowledge.class_prompts(RSSCN7, language=lang)
        assert list(prompts) == RSSCN7
        for name in RSSCN7:
            assert len(prompts[name]) >= len(TEMPLATES[lang])
        # the forest prompts name the forest presets in that language, as iD translates them
        forest_name = translations[lang]["landuse/forest"]["name"]
        assert any(forest_name.lower() in p.lower() for p in prompts["eForest"])
        # no two classes share a prompt
        flat = [p for name in RSSCN7 for p in prompts[name]]
        assert len(flat) == len(set(flat))


def test_class_prompts_with_own_templates_and_unknown_classes():
    knowledge = OSMSceneKnowledge()
    prompts = knowledge.class_prompts(["parking", "xyzzy"], templates=["photo of {}"])
    assert prompts["parking"][0] == "Photo of a parking lot"
    assert prompts["xyzzy"] == ["Photo of xyzzy"]
    with pytest.raises(ValueError, match="no prompt templates"):
        knowledge.class_prompts(["parking"], language="xx")


def test_facets_and_bad_class_map():
    knowledge = OSMSceneKnowledge(classes={"Orchard": ["landuse/orchard"]})
    facets = knowledge.facets("orchard")
    assert facets["name_en"] == ["Orchard"] and "name_de" in facets
    assert knowledge.facets("landuse/forest")["name_fr"] == ["Forêt exploitée"]
    with pytest.raises(ConfigError, match="do not exist"):
        OSMSceneKnowledge(classes={"x": ["landuse/not_a_preset"]})
