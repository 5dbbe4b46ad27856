"""Captions for image tiles from the OpenStreetMap objects inside them.

In the spirit of SkyScript and RSTeller (captions generated from OSM tags for the ground a tile
covers), a caption names the tile's main object(s) with how much of the image they take up and
where they sit ("in the upper left"), then the smaller objects around them. Object names come
from the iD presets (see presets.py), so the same description can be written in every language
the presets are translated into, as RS-M-CLIP does with translated captions.

All geometry is measured in the tile's own pixel space (the tile's affine transform inverted),
so "upper left" means the upper left of the image whatever the CRS or grid rotation, and
coverage is a fraction of the image.

Quality filters drop what a viewer could not see: an area must show at least
``min_area_fraction`` of the tile, a line at least ``min_line_fraction`` of the tile side, and a
tile needs ``min_features`` such objects to get a caption at all. Only objects whose preset
belongs to a kind of thing visible from above (``VISIBLE_KINDS``) count; a bus-stop node or an
administrative boundary is not.

Tags that say more about what is seen are written after the object's name (``ATTRIBUTES``): its
name (``name:<caption language>``, else ``name``), ``building:levels``, ``surface``,
``leaf_type`` and land-use detail (``crop``, ``trees``, ``residential``). A group states an
attribute only when every object in it carries the same value (a name: at most
``MAX_NAMES`` different ones, every object named), so nothing is said of objects that did not
say it. Tag values are named in the caption language by the iD schema's field translations
(``PresetIndex.value_name``); a value iD does not name is written as the tag value itself in the
languages of ``RAW_VALUE_LANGUAGES`` (OSM values are English words) and left out in the others;
a language's ``"values"`` phrases replace iD's word where iD's is not a name of the value.

The phrase tables (``knowledge/caption_phrases.json``) are our own wording.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import shapely
from affine import Affine
from shapely import affinity
from shapely.geometry import box

from facetvlp.core.errors import ConfigError

from .osm import OSMFeature, OSMLayer
from .presets import Preset, PresetIndex

CAPTION_PHRASES = Path(__file__).with_name("knowledge") / "caption_phrases.json"

#: top-level preset keys whose objects are visible in an overhead image
VISIBLE_KINDS = frozenset({
    "aeroway", "amenity", "building", "highway", "landuse", "leisure", "man_made", "natural",
    "power", "railway", "waterway", "water", "landcover", "golf", "military",
})
# single presets under a top-level key that is otherwise not a kind of thing ("area" is iD's
# home for area-only variants)
VISIBLE_PRESETS = frozenset({"area/highway"})
# an amenity or military site shows from above as its grounds, never as a node or a line
_AREA_ONLY_KINDS = frozenset({"amenity", "military"})
# land cover is named like a material ("grass", "water"), not counted like buildings
_MASS_KINDS = frozenset({"landuse", "natural", "landcover", "water"})
# tags that put an object out of sight of the camera
_HIDDEN = {"tunnel": {"yes", "culvert", "building_passage"}, "location": {"underground", "indoor"}}

# A line crossing the whole tile weighs like an area covering this fraction of it (a road or a
# river is prominent, but thin).
LINE_WEIGHT = 0.15
POINT_WEIGHT = 0.005

# 3 x 3 cells of the image, row-major from the top left, then "everywhere".
_CELLS = ("upper_left", "top", "upper_right", "left", "centre", "right", "lower_left", "bottom",
          "lower_right")

#: per caption language: the sentence frame ("lead", "around", "end"), list joiners ("and",
#: "sep"), extent ("cover"), position ("where"), line direction ("run"), and what is said of an
#: object's tags ("named", "quote", "details", "detail_sep", "levels", "attributes", and "values"
#: where our word replaces iD's). French "values": iD names surface=paved/unpaved "Oui"/"Non".
PHRASES: dict[str, dict[str, Any]] = json.loads(CAPTION_PHRASES.read_text(encoding="utf-8"))["languages"]
CAPTION_LANGUAGES = tuple(PHRASES)
#: what a caption may say about an object besides its kind; every language has a phrase for each
ATTRIBUTES = ("name", "levels", "surface", "leaf_type", "crop", "trees", "residential")
# the OSM key behind an attribute (the others are named after their key)
_ATTRIBUTE_KEYS = {"levels": "building:levels"}
#: languages that write a tag value iD gives no word for as the value itself ("apple_trees" ->
#: "apple trees"): OSM's values are English. Other languages leave such an attribute out.
RAW_VALUE_LANGUAGES = frozenset({"en"})
#: a group with more differently named objects than this names none of them
MAX_NAMES = 2
# name keys tried before plain ``name``, per caption language (OSM writes Chinese as zh-Hans)
_NAME_KEYS = {"pt-BR": ("name:pt-BR", "name:pt"), "zh-CN": ("name:zh-Hans", "name:zh-CN", "name:zh")}
# counts that take the singular ("1 Geschoss"); French also says "0 niveau"
_SINGULAR = {"fr": frozenset({0, 1})}
# languages whose preset names are capitalised only as titles ("Parking Lot")
_LOWERCASE_NAMES = frozenset({"en", "fr", "es", "pt-BR"})


@dataclass
class ObjectGroup:
    """All visible objects of one preset in a tile."""

    preset: Preset
    kind: str  # "area", "line" or "point"
    features: list[OSMFeature]  # clipped to the tile, geometry in tile pixels (x right, y down)
    coverage: float = 0.0  # areas: fraction of the image covered
    span: float = 0.0  # lines: visible length / tile side
    cell: str = "centre"  # one of _CELLS or "everywhere"
    run: str | None = None  # lines crossing much of the tile: "horizontal" | "vertical" | "diagonal"

    @property
    def count(self) -> int:
        return len(self.features)

    @property
    def salience(self) -> float:
        if self.kind == "area":
            return self.coverage
        if self.kind == "line":
            return LINE_WEIGHT * min(self.span, 1.5)
        return POINT_WEIGHT * self.count

    @property
    def refs(self) -> list[str]:
        return [f.ref for f in self.features if f.ref]


@dataclass
class TileDescription:
    """What a caption says: the main object groups and the ones around them."""

    main: list[ObjectGroup]
    others: list[ObjectGroup] = field(default_factory=list)

    @property
    def groups(self) -> list[ObjectGroup]:
        return self.main + self.others


class OSMCaptioner:
    """Describe a tile from its OSM objects and write the description in several languages.

    Args:
        presets: the preset index (default: the packaged iD presets).
        languages: caption languages, any of ``CAPTION_LANGUAGES``.
        min_area_fraction: an area must cover at least this fraction of the tile to count.
        min_line_fraction: a line must show at least this fraction of the tile side.
        min_features: tiles with fewer counted objects get no caption (None).
        max_main: at most this many groups are named as the main objects.
        max_others: at most this many further groups are named as surroundings.
        kinds: which feature kinds count ("area", "line", "point"); tagged points are mostly
            shops and signs that do not show from above, so they are off by default.
        attributes: which of ``ATTRIBUTES`` captions state when the tags carry them.
    """

    def __init__(
        self,
        presets: PresetIndex | None = None,
        languages: Sequence[str] = ("en", "de"),
        min_area_fraction: float = 0.002,
        min_line_fraction: float = 0.1,
        min_features: int = 1,
        max_main: int = 2,
        max_others: int = 3,
        kinds: Iterable[str] = ("area", "line"),
        attributes: Iterable[str] = ATTRIBUTES,
    ):
        unknown = [lang for lang in languages if lang not in PHRASES]
        if unknown:
            raise ConfigError(f"no caption phrases for {unknown}; choose from {CAPTION_LANGUAGES}",
                              key="languages")
        attributes = tuple(attributes)
        unknown = [a for a in attributes if a not in ATTRIBUTES]
        if unknown:
            raise ConfigError(f"unknown caption attributes {unknown}; choose from {ATTRIBUTES}",
                              key="attributes")
        self.attributes = tuple(a for a in ATTRIBUTES if a in attributes)
        self.presets = presets or PresetIndex.default()
        self.languages = tuple(languages)
        self.min_area_fraction = min_area_fraction
        self.min_line_fraction = min_line_fraction
        self.min_features = min_features
        self.max_main = max_main
        self.max_others = max_others
        self.kinds = frozenset(kinds)

    def settings(self) -> dict:
        """Everything that changes the captions (part of the pair manifest's cache key)."""
        return {
            "languages": list(self.languages),
            "min_area_fraction": self.min_area_fraction,
            "min_line_fraction": self.min_line_fraction,
            "min_features": self.min_features,
            "max_main": self.max_main,
            "max_others": self.max_others,
            "kinds": sorted(self.kinds),
            "attributes": list(self.attributes),
        }

    # -- describing ---------------------------------------------------------------------------

    def describe_tile(
        self, layer: OSMLayer, transform: Affine | Sequence[float], width: int, height: int
    ) -> TileDescription | None:
        """Describe the tile of ``width`` x ``height`` pixels whose pixel->CRS affine is
        ``transform``; ``layer`` must already be in the raster's CRS."""
        transform = transform if isinstance(transform, Affine) else Affine(*transform[:6])
        corners = [transform @ xy for xy in ((0, 0), (width, 0), (width, height), (0, height))]
        inside = layer.clip(shapely.Polygon(corners))
        return self.describe(inside, transform, width, height)

    def describe(
        self, features: Sequence[OSMFeature], transform: Affine, width: int, height: int
    ) -> TileDescription | None:
        """Describe already-clipped ``features`` (in the CRS of ``transform``)."""
        inverse = ~transform
        to_pixels = [inverse.a, inverse.b, inverse.d, inverse.e, inverse.c, inverse.f]
        tile = box(0, 0, width, height)
        side = float(np.sqrt(width * height))
        groups: dict[tuple[str, str], ObjectGroup] = {}
        for feature in features:
            kind = feature.kind
            if kind not in self.kinds:
                continue
            if any(feature.tags.get(key) in values for key, values in _HIDDEN.items()):
                continue
            preset = self.presets.match(feature.tags, kind)
            if preset is None or not _visible(preset, kind):
                continue
            geometry = affinity.affine_transform(feature.geometry, to_pixels).intersection(tile)
            if kind == "area" and geometry.area < self.min_area_fraction * width * height:
                continue
            if kind == "line" and geometry.length < self.min_line_fraction * side:
                continue
            if geometry.is_empty:
                continue
            pixel_feature = OSMFeature(feature.osm_type, feature.osm_id, feature.tags, geometry)
            groups.setdefault((preset.id, kind), ObjectGroup(preset, kind, [])).features.append(
                pixel_feature
            )
        if sum(g.count for g in groups.values()) < max(self.min_features, 1):
            return None
        for group in groups.values():
            _measure(group, width, height, side)
        ranked = sorted(groups.values(), key=lambda g: (-g.salience, g.preset.id, g.kind))
        main = [ranked[0]]
        for group in ranked[1 : self.max_main]:
            # a second main object only when it is about as prominent as the first
            if group.salience >= 0.5 * ranked[0].salience:
                main.append(group)
        others = ranked[len(main) : len(main) + self.max_others]
        return TileDescription(main, others)

    # -- writing ------------------------------------------------------------------------------

    def caption(self, description: TileDescription, language: str = "en") -> str:
        phrases = PHRASES[language]
        main = _join([self._main_phrase(g, language) for g in description.main], phrases)
        text = phrases["lead"].format(main=main)
        if description.others:
            others = _join([self._name_phrase(g, language) for g in description.others], phrases)
            text += phrases["around"].format(others=others)
        return text + phrases["end"]

    def captions(self, description: TileDescription) -> dict[str, str]:
        return {language: self.caption(description, language) for language in self.languages}

    def caption_tile(
        self, layer: OSMLayer, transform: Affine | Sequence[float], width: int, height: int
    ) -> dict[str, str] | None:
        """Captions in every language for one tile, or None when the tile fails the filters."""
        description = self.describe_tile(layer, transform, width, height)
        return None if description is None else self.captions(description)

    def _main_phrase(self, group: ObjectGroup, language: str) -> str:
        phrases = PHRASES[language]
        parts = [self._name_phrase(group, language)]
        if group.kind == "area":
            parts.append(phrases["cover"].format(pct=_percent(group.coverage)))
        if group.run is not None:
            parts.append(phrases["run"][group.run])
        elif group.cell != "everywhere":
            # an area spread over the whole image has no position; its coverage says it all
            parts.append(phrases["where"][group.cell])
        return ("，" if language == "zh-CN" else " ").join(parts)

    def _name_phrase(self, group: ObjectGroup, language: str) -> str:
        """The group's name, then what its tags say about it ("a building named "X" with 3
        levels", "Gebäude „X“ (3 Geschosse)")."""
        phrases = PHRASES[language]
        text = object_name(group.preset, language, group.count, group.kind)
        names = group_names(group, language) if "name" in self.attributes else []
        if names:
            quoted = [phrases["quote"].format(name) for name in names]
            text += phrases["named"].format(names=_join(quoted, phrases))
        details = [
            phrase
            for attribute in self.attributes
            if attribute != "name"
            and (phrase := self._detail(group, attribute, language)) is not None
        ]
        if details:
            text += phrases["details"].format(phrases["detail_sep"].join(details))
        return text

    def _detail(self, group: ObjectGroup, attribute: str, language: str) -> str | None:
        """One attribute of the group in words, or None when its objects do not all say it."""
        phrases = PHRASES[language]
        key = _ATTRIBUTE_KEYS.get(attribute, attribute)
        if key in group.preset.tags:
            return None  # the name already says it ("Apartment Complex" is residential=apartments)
        if attribute == "levels":
            # buildings of one group may differ: their range is stated when all carry a count
            levels = [_level_count(f.tags.get(key, "")) for f in group.features]
            if None in levels:
                return None
            low, high = min(levels), max(levels)
            if low != high:
                return phrases["levels"]["range"].format(low=low, high=high)
            singular = low in _SINGULAR.get(language, frozenset({1}))
            return phrases["levels"]["one" if singular else "other"].format(n=low)
        value = shared_value(group, key)
        if value is None:
            return None
        words = [self._value_word(key, part.strip(), language) for part in value.split(";")]
        if not words or None in words:
            return None
        return phrases["attributes"][attribute].format(value=_join(words, phrases))

    def _value_word(self, key: str, value: str, language: str) -> str | None:
        own = PHRASES[language].get("values", {}).get(key, {})
        word = own.get(value) or self.presets.value_name(key, value, language)
        if word is None:
            if language not in RAW_VALUE_LANGUAGES or not value:
                return None
            word = value.replace("_", " ")
        return word.lower() if language in _LOWERCASE_NAMES else word


def object_name(preset: Preset, language: str, count: int = 1, kind: str = "area") -> str:
    """A preset's name as it reads inside a sentence.

    Discrete objects are counted ("a parking lot", "12 buildings"); land cover is named bare
    ("grass", "managed forest"); lines are named without a count, because OSM splits one road
    into many ways ("a footway", "footways"). Languages other than English keep the dictionary
    form and put a count in brackets: we do not inflect nouns we did not write.
    """
    name = preset.name(language)
    if language in _LOWERCASE_NAMES:
        name = name.lower()
    top = preset.id.split("/", 1)[0]
    if kind == "area" and top in _MASS_KINDS:
        return name
    if language == "en":
        if count == 1:
            return f"{english_article(name)} {name}"
        return english_plural(name) if kind == "line" else f"{count} {english_plural(name)}"
    if count == 1 or kind == "line":
        return name
    return f"{count}处{name}" if language == "zh-CN" else f"{name} ({count})"


def shared_value(group: ObjectGroup, key: str) -> str | None:
    """The value of tag ``key`` when every object of the group has it, and the same one."""
    values = {feature.tags.get(key) for feature in group.features}
    value = values.pop() if len(values) == 1 else None
    return value if value else None


def feature_name(tags: Mapping[str, str], language: str) -> str | None:
    """The object's name in ``language`` (``name:de``), else its ``name``."""
    for key in _NAME_KEYS.get(language, (f"name:{language}",)) + ("name",):
        if tags.get(key, "").strip():
            return tags[key].strip()
    return None


def group_names(group: ObjectGroup, language: str) -> list[str]:
    """The names of a group whose objects are all named, with at most ``MAX_NAMES`` different
    ones (a road split into many ways is one name), the largest object's first; else []."""
    sizes: dict[str, float] = {}
    for feature in group.features:
        name = feature_name(feature.tags, language)
        if name is None:
            return []
        size = feature.geometry.area if group.kind == "area" else feature.geometry.length
        sizes[name] = sizes.get(name, 0.0) + size
    if len(sizes) > MAX_NAMES:
        return []
    return sorted(sizes, key=lambda name: (-sizes[name], name))


def english_article(phrase: str) -> str:
    # "an area", "a university": a written u sounds like "you" in uni-/us-/ut- words
    vowel = phrase[:1] in ("a", "e", "i", "o") or (
        phrase[:1] == "u" and not phrase.startswith(("uni", "us", "ut"))
    )
    return "an" if vowel else "a"


def english_plural(phrase: str) -> str:
    """Plural of the last word of an English noun phrase ("parking lot" -> "parking lots")."""
    head, _, last = phrase.rpartition(" ")
    if last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _visible(preset: Preset, kind: str) -> bool:
    if not preset.searchable and all(v == "*" for v in preset.tags.values()):
        return False  # iD's catch-all for a key ("Land Use Feature"): says nothing about the look
    top = preset.id.split("/", 1)[0]
    if top not in VISIBLE_KINDS:
        return preset.id in VISIBLE_PRESETS
    return kind == "area" or top not in _AREA_ONLY_KINDS


def _measure(group: ObjectGroup, width: int, height: int, side: float) -> None:
    geometry = shapely.union_all([f.geometry for f in group.features])
    if group.kind == "area":
        group.coverage = float(geometry.area / (width * height))
        anchor = geometry.centroid
    elif group.kind == "line":
        group.span = float(geometry.length / side)
        anchor = shapely.line_interpolate_point(geometry, 0.5, normalized=True) if isinstance(
            geometry, shapely.LineString
        ) else geometry.centroid
        if group.span >= 0.6:
            group.run = _direction(geometry)
    else:
        anchor = geometry.centroid
    minx, miny, maxx, maxy = geometry.bounds
    if group.kind == "area" and (
        group.coverage >= 0.6 or (maxx - minx >= 0.8 * width and maxy - miny >= 0.8 * height
                                  and group.coverage >= 0.3)
    ):
        group.cell = "everywhere"
        return
    column = min(int(3 * anchor.x / width), 2) if width else 1
    row = min(int(3 * anchor.y / height), 2) if height else 1
    group.cell = _CELLS[3 * max(row, 0) + max(column, 0)]


def _direction(geometry) -> str:
    """Overall direction of a line set in pixel space, from its principal axis."""
    coords = shapely.get_coordinates(geometry)
    centred = coords - coords.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    dx, dy = np.abs(axes[0])
    angle = np.degrees(np.arctan2(dy, dx))
    if angle < 25:
        return "horizontal"
    if angle > 65:
        return "vertical"
    return "diagonal"


def _level_count(value: str) -> int | None:
    # building:levels is a count of storeys above ground; "2;3" or "2.5" name no single count
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _percent(fraction: float) -> int:
    # round to 5 % steps above 10 %: finer figures are noise for a caption
    pct = 100 * fraction
    return max(1, round(pct)) if pct < 10 else int(5 * round(pct / 5))


def _join(items: list[str], phrases: Mapping[str, object]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return phrases["sep"].join(items[:-1]) + phrases["and"] + items[-1]
