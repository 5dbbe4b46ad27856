"""OSM tags -> human words, through the iD editor's tagging-schema presets.

The iD tagging schema (npm ``@openstreetmap/id-tagging-schema``, ISC licence, "Copyright (c) iD
Contributors") defines, for each kind of mapped object, the tags that identify it, the
geometries it applies to (point, vertex, line, area), and in its translation files a display
name and search terms in many languages. Its fields (``fields.json``) list the values a tag such
as ``surface`` takes, and the translations name those values too ("asphalt" -> "Asphalt",
"Asphalte", "沥青"). We keep a compact derivative of both in ``knowledge/osm_presets.json`` (the
ISC notice travels inside it) so that captions and zero-shot prompts work without the schema
folder; :func:`compact_schema` rebuilds that file from the schema's ``presets.json``,
``fields.json`` and ``translations/<lang>.min.json``.

Matching an element to its preset follows the scoring iD documents for its presets: every tag
of the preset must be present (an exact value earns the preset's ``matchScore``, a ``*`` value
half of it), values in ``addTags`` that also match earn more, and presets marked
``searchable: false`` lose a hair so that a specific preset wins a tie.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

LANGUAGES = ("en", "de", "fr", "es", "pt-BR", "zh-CN", "ar")
#: tag keys whose values captions name in words: iD field id -> the tag key it edits. (``trees``
#: and ``residential`` are iD fields too, but without listed values to translate.)
VALUE_FIELDS = {"surface": "surface", "leaf_type": "leaf_type", "crop": "crop"}
PACKAGED_PRESETS = Path(__file__).with_name("knowledge") / "osm_presets.json"
ISC_NOTICE = (
    "Derived from the iD tagging schema (@openstreetmap/id-tagging-schema): ISC License, "
    "Copyright (c) iD Contributors. Permission to use, copy, modify, and/or distribute this "
    "software for any purpose with or without fee is hereby granted, provided that the above "
    "copyright notice and this permission notice appear in all copies. THE SOFTWARE IS PROVIDED "
    '"AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES WITH REGARD TO THIS SOFTWARE INCLUDING ALL '
    "IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR "
    "ANY SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES WHATSOEVER RESULTING "
    "FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF CONTRACT, NEGLIGENCE OR OTHER "
    "TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE."
)

# iD splits synonyms with commas; Chinese and Arabic translators also use their own commas
_TERM_SEPARATORS = re.compile(r"[,\n，、،]")
# our feature kinds -> the iD geometries a preset may declare for them
_GEOMETRIES = {"point": ("point", "vertex"), "line": ("line",), "area": ("area",)}


@dataclass(frozen=True)
class Preset:
    id: str  # "landuse/forest"
    tags: Mapping[str, str]
    add_tags: Mapping[str, str]
    geometry: tuple[str, ...]
    match_score: float
    searchable: bool
    names: Mapping[str, str]  # language -> display name
    terms: Mapping[str, tuple[str, ...]]  # language -> synonyms

    def score(self, tags: Mapping[str, str]) -> float:
        """How well ``tags`` fit this preset; negative when they do not fit at all."""
        score = 0.0
        for key, value in self.tags.items():
            if tags.get(key) == value:
                score += self.match_score
            elif value == "*" and key in tags:
                score += self.match_score / 2
            else:
                return -1.0
        for key, value in self.add_tags.items():
            if key not in self.tags and tags.get(key) == value:
                score += self.match_score
        return score if self.searchable else score * 0.999

    def name(self, language: str = "en") -> str:
        return self.names.get(language) or self.names.get("en") or self.id

    def synonyms(self, language: str = "en") -> tuple[str, ...]:
        return tuple(self.terms.get(language, ()))


class PresetIndex:
    """All presets, with best-match lookup by tags and geometry, and names per language."""

    def __init__(self, compact: Mapping):
        self.languages = tuple(compact["languages"])
        #: tag key -> language -> tag value -> display name ("surface" -> "de" -> "asphalt" ->
        #: "Asphalt")
        self.values: dict[str, dict[str, dict[str, str]]] = compact.get("values", {})
        self.presets = {
            pid: Preset(
                id=pid,
                tags=entry["tags"],
                add_tags=entry.get("addTags", {}),
                geometry=tuple(entry["geometry"]),
                match_score=float(entry.get("matchScore", 1.0)),
                searchable=bool(entry.get("searchable", True)),
                names=entry["names"],
                terms={lang: tuple(t) for lang, t in entry.get("terms", {}).items()},
            )
            for pid, entry in compact["presets"].items()
        }
        # candidates per tag key, so matching an element scans a handful of presets, not 1,700
        self._by_key: dict[str, list[Preset]] = {}
        for preset in self.presets.values():
            for key in preset.tags:
                self._by_key.setdefault(key, []).append(preset)

    @classmethod
    def from_schema_dir(cls, schema_dir: str | os.PathLike, languages=LANGUAGES) -> "PresetIndex":
        return cls(compact_schema(schema_dir, languages))

    @classmethod
    def default(cls) -> "PresetIndex":
        """The packaged presets (7 languages); loaded once per process."""
        return _packaged_index()

    def __getitem__(self, preset_id: str) -> Preset:
        return self.presets[preset_id]

    def __contains__(self, preset_id: str) -> bool:
        return preset_id in self.presets

    def match(self, tags: Mapping[str, str], kind: str) -> Preset | None:
        """The best preset for an element with ``tags`` drawn as ``kind`` ("point", "line",
        "area"), or None when only iD's generic fallbacks would fit."""
        geometries = _GEOMETRIES[kind]
        best, best_score = None, 0.0
        seen: set[str] = set()
        for key in tags:
            for preset in self._by_key.get(key, ()):
                if preset.id in seen:
                    continue
                seen.add(preset.id)
                if not any(g in preset.geometry for g in geometries):
                    continue
                score = preset.score(tags)
                # ties go to the alphabetically first id, so the choice never depends on the
                # order of the tags
                if score > best_score or (
                    score == best_score and best is not None and preset.id < best.id
                ):
                    best, best_score = preset, score
        return best

    def value_name(self, key: str, value: str, language: str = "en") -> str | None:
        """iD's display name of a tag value ("surface", "paving_stones" -> "Paving Stones"), or
        None when the schema names no such value in ``language``."""
        return self.values.get(key, {}).get(language, {}).get(value)

    def search(self, word: str, language: str = "en") -> list[Preset]:
        """Presets whose name or synonyms in ``language`` equal ``word`` (case-insensitive);
        exact names first."""
        word = word.casefold().strip()
        by_name = [p for p in self.presets.values() if p.name(language).casefold() == word]
        by_term = [
            p
            for p in self.presets.values()
            if p not in by_name and word in (t.casefold() for t in p.synonyms(language))
        ]
        return sorted(by_name, key=lambda p: p.id) + sorted(by_term, key=lambda p: p.id)


def compact_schema(schema_dir: str | os.PathLike, languages=LANGUAGES) -> dict:
    """Reduce the iD schema folder to what matching and naming need, in ``languages``: the
    presets, and the names of the values of the :data:`VALUE_FIELDS` tags.

    Regional variants (a ``locationSet`` that does not include the whole planet) and presets
    keyed on wildcard tag keys (``addr:*``) are left out: we match without knowing the country,
    and a wildcard key names no kind of object.
    """
    schema_dir = Path(schema_dir)
    with open(schema_dir / "presets.json", encoding="utf-8") as handle:
        raw = json.load(handle)
    with open(schema_dir / "fields.json", encoding="utf-8") as handle:
        fields = json.load(handle)
    translations, field_translations = {}, {}
    for language in languages:
        with open(schema_dir / "translations" / f"{language}.min.json", encoding="utf-8") as handle:
            words = json.load(handle)[language]["presets"]
        translations[language] = words["presets"]
        field_translations[language] = words.get("fields", {})
    presets = {}
    for pid, entry in sorted(raw.items()):
        location = entry.get("locationSet", {}).get("include")
        if location and not {"Planet", "001"}.intersection(location):
            continue
        if not entry.get("tags") or any("*" in key for key in entry["tags"]):
            continue
        # a preset may borrow its words from another ("name": "{education/university}")
        words_from = entry["name"][1:-1] if str(entry.get("name", "")).startswith("{") else pid
        names, terms = {}, {}
        for language in languages:
            text = translations[language].get(pid) or translations[language].get(words_from, {})
            if text.get("name"):
                names[language] = text["name"]
            words = [
                w.strip()
                for field in ("terms", "aliases")
                for w in _TERM_SEPARATORS.split(text.get(field, ""))
                if w.strip()
            ]
            if words:
                terms[language] = list(dict.fromkeys(words))
        if not names:
            continue  # nothing to call it by in any language
        compact = {"tags": entry["tags"], "geometry": entry["geometry"], "names": names}
        if entry.get("addTags"):
            compact["addTags"] = entry["addTags"]
        if "matchScore" in entry:
            compact["matchScore"] = entry["matchScore"]
        if entry.get("searchable") is False:
            compact["searchable"] = False
        if terms:
            compact["terms"] = terms
        presets[pid] = compact
    values = {}
    for field_id, key in VALUE_FIELDS.items():
        if fields[field_id]["key"] != key:
            raise ValueError(f"iD field {field_id!r} edits {fields[field_id]['key']!r}, not {key!r}")
        values[key] = {
            language: options
            for language in languages
            if (options := field_translations[language].get(field_id, {}).get("options"))
        }
    return {"notice": ISC_NOTICE, "languages": list(languages), "presets": presets,
            "values": values}


@lru_cache(maxsize=1)
def _packaged_index() -> PresetIndex:
    with open(PACKAGED_PRESETS, encoding="utf-8") as handle:
        return PresetIndex(json.load(handle))


def write_packaged_presets(schema_dir: str | os.PathLike) -> Path:
    """Regenerate ``knowledge/osm_presets.json`` from an iD schema folder (run by hand when the
    schema is updated: ``python -m facetvlp.domains.remote_sensing.presets SCHEMA_DIR``)."""
    PACKAGED_PRESETS.parent.mkdir(exist_ok=True)
    with open(PACKAGED_PRESETS, "w", encoding="utf-8") as handle:
        json.dump(compact_schema(schema_dir), handle, ensure_ascii=False, separators=(",", ":"))
    return PACKAGED_PRESETS


if __name__ == "__main__":
    import sys

    print(write_packaged_presets(sys.argv[1]))


# -- closed ways: area or line ----------------------------------------------------------------------

# Keys whose closed ways are lines, whatever presets with area geometry exist for them, and the
# tags among them that are areas after all: both as in the iD editor (presetIndex.areaKeys and
# osmAreaKeysExceptions in iD's source), which keeps them in code, not in the tagging schema.
LINE_KEYS = frozenset({"barrier", "highway", "footway", "railway", "junction", "traffic_calming", "type"})
AREA_KEY_EXCEPTIONS: dict[str, frozenset[str]] = {
    "highway": frozenset({"elevator", "rest_area", "services"}),
    "public_transport": frozenset({"platform"}),
    "railway": frozenset({"platform", "roundhouse", "station", "traverser", "turntable", "wash"}),
    "traffic_calming": frozenset({"island"}),
    "waterway": frozenset({"dam"}),
}


@lru_cache(maxsize=1)
def area_keys(index: "PresetIndex | None" = None) -> dict[str, frozenset[str]]:
    """``{key: line values}`` from the presets, by iD's rule: a key is an area key when a preset
    whose first tag has that key allows area geometry (keys in :data:`LINE_KEYS` never are);
    a value of an area key is a line value when a preset that adds that tag allows line
    geometry. A closed way with an area-key tag whose value is not a line value is an area."""
    index = index or PresetIndex.default()
    presets = [p for p in index.presets.values() if not p.id.startswith("@templates")]
    keys: dict[str, set[str]] = {}
    for preset in presets:
        first = next(iter(preset.tags), None)
        if first is not None and first not in LINE_KEYS and "area" in preset.geometry:
            keys.setdefault(first, set())
    for preset in presets:
        for key, value in (preset.add_tags or preset.tags).items():
            if key in keys and "line" in preset.geometry and value != "*":
                keys[key].add(value)
    return {key: frozenset(values) for key, values in keys.items()}
