"""Shape knowledge: class names expanded into descriptive text (parts, typical shape, use).

A bare class name gives a text tower little to go on; "a small box about knee high with one or
two drawers" places a never-seen "nightstand" next to the "dresser" the point tower did learn.
Training samples carry these descriptions as facets, and zero-shot prompts ensemble them with
templates, so unseen classes are described in the same vocabulary the seen ones were trained on.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from facetvlp.core.registry import KNOWLEDGE

DEFAULT_PATH = Path(__file__).with_name("knowledge") / "shapes.json"
FACET_KINDS = ("parts", "shape", "use")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@KNOWLEDGE.register_module()
class ShapeKnowledge:
    """Descriptions of ModelNet object classes and ASPRS LiDAR classes (knowledge/shapes.json).

    `kind="object"` uses the object templates ("a point cloud of a {}."); `kind="lidar"` the
    aerial LiDAR ones ("an aerial LiDAR tile of {}.").
    """

    def __init__(self, path: str | None = None, kind: str = "object", descriptions: bool = True):
        if kind not in ("object", "lidar"):
            raise ValueError(f"kind must be 'object' or 'lidar', got {kind!r}")
        self.path = str(path or DEFAULT_PATH)
        self.data = _load(self.path)
        self.kind = kind
        self.descriptions = descriptions

    @property
    def concepts(self) -> list[str]:
        return sorted(self.data["concepts"])

    def concept(self, name: str) -> dict:
        key = name.strip().lower().replace(" ", "_").replace("-", "_")
        try:
            return self.data["concepts"][key]
        except KeyError:
            raise KeyError(f"no shape knowledge for '{name}' in {self.path}") from None

    def display_name(self, name: str) -> str:
        try:
            return self.concept(name)["name"]
        except KeyError:
            return name.replace("_", " ")

    def templates(self, language: str = "en") -> list[str]:
        table = self.data["templates" if self.kind == "object" else "lidar_templates"]
        if language not in table:
            raise KeyError(f"no {self.kind} templates in language '{language}' ({sorted(table)})")
        return table[language]

    def facets(self, concept: str) -> dict[str, list[str]]:
        """{"name": [...], "parts": [...], "shape": [...], "use": [...]} as full sentences."""
        entry = self.concept(concept)
        name = entry["name"]
        out = {"name": [name] + list(entry.get("synonyms", []))}
        if self.kind == "lidar":
            out["shape"] = [f"{name}: {s}." for s in entry.get("shape", [])]
            out["parts"] = [f"{name}, made of {p}." for p in entry.get("parts", [])]
            return out
        out["parts"] = [f"a {name} with {p}." for p in entry.get("parts", [])]
        out["shape"] = [f"a {name}, {s}." for s in entry.get("shape", [])]
        out["use"] = [f"a {name}, {u}." for u in entry.get("use", [])]
        return out

    def sample_texts(self, concept: str, language: str = "en") -> list[str]:
        """Every facet sentence for one training item of this class: each is a valid caption."""
        facets = self.facets(concept) if self._known(concept) else {"name": [concept]}
        texts = [t.format(n) for n in facets["name"][:2] for t in self.templates(language)]
        if self.descriptions:
            for kind in FACET_KINDS:
                texts += facets.get(kind, [])
        return texts

    def class_prompts(
        self, classes: Sequence[str], templates: Sequence[str] | None = None, language: str = "en"
    ) -> dict[str, list[str]]:
        """Per class, the prompt ensemble whose mean text embedding represents the class."""
        chosen = list(templates) if templates else self.templates(language)
        prompts = {}
        for cls in classes:
            name = self.display_name(cls)
            texts = [t.format(name) for t in chosen]
            if self.descriptions and self._known(cls):
                facets = self.facets(cls)
                for kind in FACET_KINDS:
                    texts += facets.get(kind, [])
            prompts[cls] = texts
        return prompts

    def asprs_concept(self, code: int) -> str | None:
        return self.data["asprs_codes"].get(str(int(code)))

    def _known(self, name: str) -> bool:
        try:
            self.concept(name)
            return True
        except KeyError:
            return False
