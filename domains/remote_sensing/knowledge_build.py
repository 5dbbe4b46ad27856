"""Build ``knowledge/scene_knowledge.json``: one knowledge entry per remote-sensing scene class.

An entry joins what the iD tagging schema says about a class with what we wrote about it:

- ``presets``: the presets that define the class (ids from ``scene_classes.json``), each with its
  defining tags, its name and its search terms (synonyms and aliases) in every language we caption
  in, as the schema's translation files give them;
- ``related``: presets typically seen inside such a scene (an airport holds runways, aprons,
  terminals; ids hand-picked in ``scene_descriptions.json``), with their tags and names;
- ``visual``: short descriptions of what the scene looks like from above, in our own words
  (``scene_descriptions.json``), in English only.

Where the schema has no name for a preset in a language, the entry keeps the English name and the
pair is listed under ``fallbacks`` (docs/remote_sensing.md names them). Run by hand when the
schema or the descriptions change::

    python -m facetvlp.domains.remote_sensing.knowledge_build ../shared/data/remote_sensing/osm_tagging_schema
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from facetvlp.core.errors import ConfigError

from .presets import ISC_NOTICE, LANGUAGES, compact_schema

KNOWLEDGE_DIR = Path(__file__).with_name("knowledge")
CLASS_PRESETS = KNOWLEDGE_DIR / "scene_classes.json"
DESCRIPTIONS = KNOWLEDGE_DIR / "scene_descriptions.json"
SCENE_KNOWLEDGE = KNOWLEDGE_DIR / "scene_knowledge.json"


def _preset_entry(pid: str, schema: dict, languages, with_terms: bool) -> tuple[dict, list[str]]:
    """The schema's words for one preset, and the languages where its name is missing."""
    if pid not in schema["presets"]:
        raise ConfigError(f"preset {pid!r} is not in the iD schema", key="scene knowledge")
    raw = schema["presets"][pid]
    names = {lang: raw["names"].get(lang) or raw["names"]["en"] for lang in languages}
    entry = {"id": pid, "tags": raw["tags"], "names": names}
    if with_terms:
        entry["terms"] = {lang: raw.get("terms", {}).get(lang, []) for lang in languages}
    return entry, [lang for lang in languages if lang not in raw["names"]]


def build_scene_knowledge(schema_dir: str | os.PathLike, languages=LANGUAGES) -> dict:
    """Every described class with its schema-derived parts (see the module docstring)."""
    schema = compact_schema(schema_dir, languages)
    class_presets = json.loads(CLASS_PRESETS.read_text(encoding="utf-8"))["classes"]
    described = json.loads(DESCRIPTIONS.read_text(encoding="utf-8"))["classes"]
    classes, fallbacks = {}, []
    for name, ours in sorted(described.items()):
        if name not in class_presets:
            raise ConfigError(f"{DESCRIPTIONS.name}: class {name!r} has no presets in "
                              f"{CLASS_PRESETS.name}", key="scene knowledge")
        entry = {"presets": [], "related": [], "visual": list(ours["visual"])}
        for part, ids, with_terms in (("presets", class_presets[name], True),
                                      ("related", ours["related"], False)):
            for pid in ids:
                preset, missing = _preset_entry(pid, schema, languages, with_terms)
                entry[part].append(preset)
                fallbacks += [{"class": name, "language": lang, "preset": pid,
                               "missing": "name", "used": "en"} for lang in missing]
        classes[name] = entry
    return {
        "notice": ("Preset ids, tags, names and terms: " + ISC_NOTICE + " Visual descriptions: "
                   "facetvlp's own words (scene_descriptions.json)."),
        "languages": list(languages),
        "visual_languages": ["en"],
        "classes": classes,
        "fallbacks": fallbacks,
    }


def write_scene_knowledge(schema_dir: str | os.PathLike) -> Path:
    knowledge = build_scene_knowledge(schema_dir)
    with open(SCENE_KNOWLEDGE, "w", encoding="utf-8") as handle:
        json.dump(knowledge, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
    return SCENE_KNOWLEDGE


if __name__ == "__main__":
    import sys

    print(write_scene_knowledge(sys.argv[1]))
