"""Shape knowledge: class names expanded into descriptive text (parts, typical shape, use).

A bare class name gives a text tower little to go on, and worse, its associations are lexical and
functional, not geometric: to MiniLM a "nightstand" is close to a "bed" (it stands beside one)
and a "sofa" is far from a "bed", while as point clouds a sofa looks like a bed and a nightstand
like a small dresser. So the descriptive facets are written as geometry *without the class name*
("a small box about knee high", "a flat slab held up by legs at the corners"), training captions
mix name templates with those descriptions, and zero-shot prompts for classes never seen in
training use the descriptions (``prompts="describe"``): an unseen shape is matched on the shape
vocabulary the seen classes were trained with. The "use" facet is kept for facets() but left out
of captions and prompts: a point cloud shows no function.

Object classes also carry *attributes*: keys into one shared vocabulary of geometric statements
("it stands on separate thin legs.", "it is hollowed out into a basin or bowl."). Trained with
:class:`~facetvlp.core.losses.QueryLoss` against that vocabulary (``ShapeFolderDataset(
attribute_queries=True)``), a point tower learns each attribute from every seen class that has
it, and an unseen class is prompted with its own attributes (``prompts="attributes"``) - the
attribute route of classic zero-shot learning (Lampert et al. 2009) with the text tower embedding
the attribute statements (as KAD does with UMLS entities).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import KNOWLEDGE

DEFAULT_PATH = Path(__file__).with_name("knowledge") / "shapes.json"
GEOMETRIC_FACETS = ("parts", "shape")
PROMPT_STYLES = ("name", "describe", "both", "attributes")


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@KNOWLEDGE.register_module()
class ShapeKnowledge:
    """Descriptions of ModelNet object classes and ASPRS LiDAR classes (knowledge/shapes.json).

    `kind="object"` uses the object templates ("a point cloud of a {}."); `kind="lidar"` the
    aerial LiDAR ones ("an aerial LiDAR tile of {}."). ``descriptions`` adds the geometric
    descriptions to training captions; ``prompts`` picks the zero-shot prompt style.
    """

    def __init__(self, path: str | None = None, kind: str = "object", descriptions: bool = True,
                 prompts: str = "both"):
        if kind not in ("object", "lidar"):
            raise ConfigError(f"must be 'object' or 'lidar', got {kind!r}", key="kind")
        if prompts not in PROMPT_STYLES:
            raise ConfigError(f"must be one of {PROMPT_STYLES}, got {prompts!r}", key="prompts")
        self.prompts = prompts
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
        if language not in table:  # the shape knowledge is written in English only (docs/pointcloud.md)
            raise ConfigError(f"ShapeKnowledge has {self.kind} prompts in {', '.join(sorted(table))} only, "
                              f"not {language!r}", key="language")
        return table[language]

    def facets(self, concept: str) -> dict[str, list[str]]:
        """{"name": [...], "parts": [...], "shape": [...], "use": [...]}; descriptions are
        full sentences that do not name the class."""
        entry = self.concept(concept)
        out = {"name": [entry["name"]] + list(entry.get("synonyms", []))}
        if self.kind == "lidar":
            out["parts"] = [f"{p}." for p in entry.get("parts", [])]
            out["shape"] = [f"{s}." for s in entry.get("shape", [])]
            return out
        out["parts"] = [f"an object with {p}." for p in entry.get("parts", [])]
        out["shape"] = [f"an object that is {s}." for s in entry.get("shape", [])]
        out["use"] = [f"{u}." for u in entry.get("use", [])]
        return out

    @property
    def attribute_vocabulary(self) -> list[str]:
        """Every attribute statement, in vocabulary order (the QueryLoss queries)."""
        return list(self.data.get("attributes", {}).values())

    def attribute_targets(self, concept: str) -> list[float]:
        """Multi-hot over :attr:`attribute_vocabulary` of the attributes of one class."""
        keys = list(self.data.get("attributes", {}))
        have = set(self.concept(concept).get("attributes", ()))
        unknown = have - set(keys)
        if unknown:
            raise KeyError(f"'{concept}' lists attributes {sorted(unknown)} missing from the "
                           f"vocabulary of {self.path}")
        if not have:
            raise KeyError(f"no attributes for '{concept}' in {self.path}")
        return [1.0 if key in have else 0.0 for key in keys]

    def attributes(self, concept: str) -> list[str]:
        targets = self.attribute_targets(concept)
        return [text for text, hit in zip(self.attribute_vocabulary, targets) if hit]

    def sample_texts(self, concept: str, language: str = "en") -> list[str]:
        """Every caption of one training item of this class: name templates (the name and its
        first synonym) and, with ``descriptions``, the geometric descriptions."""
        facets = self.facets(concept) if self._known(concept) else {"name": [concept]}
        texts = [t.format(n) for n in facets["name"][:2] for t in self.templates(language)]
        if self.descriptions:
            for kind in GEOMETRIC_FACETS:
                texts += facets.get(kind, [])
        return texts

    def class_prompts(
        self, classes: Sequence[str], templates: Sequence[str] | None = None, language: str = "en"
    ) -> dict[str, list[str]]:
        """Per class, the prompt ensemble whose mean text embedding represents the class:
        name templates (``prompts="name"``), geometric descriptions (``"describe"``, falling back
        to the name for a class without knowledge), both (``"both"``) or the class's attribute
        statements (``"attributes"``; a class without attributes is an error: its name alone
        would not be comparable with attribute scores)."""
        chosen = list(templates) if templates else self.templates(language)
        prompts = {}
        for cls in classes:
            if self.prompts == "attributes":
                prompts[cls] = self.attributes(cls)
                continue
            named = [t.format(self.display_name(cls)) for t in chosen]
            described = []
            if self._known(cls):
                facets = self.facets(cls)
                described = [t for kind in GEOMETRIC_FACETS for t in facets.get(kind, [])]
            if self.prompts == "name" or not described:
                prompts[cls] = named
            elif self.prompts == "describe":
                prompts[cls] = described
            else:
                prompts[cls] = named + described
        return prompts

    def asprs_concept(self, code: int) -> str | None:
        return self.data["asprs_codes"].get(str(int(code)))

    def _known(self, name: str) -> bool:
        try:
            self.concept(name)
            return True
        except KeyError:
            return False
