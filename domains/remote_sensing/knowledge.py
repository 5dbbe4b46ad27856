"""Scene-class knowledge for zero-shot remote-sensing classification, in several languages.

A scene class ("forest", RSSCN7's "aGrass", EuroSAT's "SeaLake") is mapped to iD presets
(knowledge/scene_classes.json); its prompts are the presets' names and synonyms in the asked
language, put into prompt templates written the way :mod:`captions` writes its captions
("An aerial image of a park."), so a model pre-trained on OSM captions meets familiar text at
zero-shot time. Names come from the iD preset translations (RS-M-CLIP-like multilingual prompts).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import KNOWLEDGE

from .captions import object_name
from .presets import Preset, PresetIndex

log = logging.getLogger(__name__)

SCENE_CLASSES = Path(__file__).with_name("knowledge") / "scene_classes.json"

#: our prompt templates per language; "{}" is the object as the captions name it
TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": ("An aerial image of {}.", "A satellite image of {}.", "{} seen from above."),
    "de": ("Luftbild: {}.", "Satellitenbild: {}.", "Blick von oben: {}."),
    "fr": ("Image aérienne : {}.", "Image satellite : {}.", "Vue d'en haut : {}."),
    "es": ("Imagen aérea: {}.", "Imagen de satélite: {}.", "Vista desde arriba: {}."),
    "pt-BR": ("Imagem aérea: {}.", "Imagem de satélite: {}.", "Vista de cima: {}."),
    "zh-CN": ("航拍图像：{}。", "卫星图像：{}。", "俯视图：{}。"),
    "ar": ("صورة جوية: {}.", "صورة فضائية: {}.", "منظر من الأعلى: {}."),
}
# iD lists synonyms alphabetically, not by how good they are ("boreal", "cut" for a forest), so
# by default prompts use names only
SYNONYMS_PER_PRESET = 0


def normalise_class_name(name: str) -> str:
    """A readable class name from a dataset's folder or label name, also the key of the scene
    class map: "AnnualCrop" -> "annual crop" (EuroSAT), "basketball_court" -> "basketball
    court" (RESISC45), "dRiverLake" -> "river lake" (RSSCN7 puts a sort letter before the
    name). Names without separators ("denseresidential", UC Merced) stay as they are: pass
    readable names yourself (``SceneFolderDataset(class_names=...)``, ``classes=``)."""
    name = re.sub(r"^[a-z](?=[A-Z])", "", name.strip())  # RSSCN7's leading sort letter
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.sub(r"[_\-/]+", " ", name).split()).lower()


@KNOWLEDGE.register_module()
class OSMSceneKnowledge:
    """Zero-shot prompts and facets for scene classes, from the iD presets.

    Args:
        classes: extra or overriding class -> preset-id mappings (normalised names as keys).
        presets: a :class:`PresetIndex` (default: the packaged one).
        synonyms: how many preset synonyms per language join the name in the prompts.
    """

    def __init__(
        self,
        classes: Mapping[str, Sequence[str]] | None = None,
        presets: PresetIndex | None = None,
        synonyms: int = SYNONYMS_PER_PRESET,
    ):
        self.presets = presets or PresetIndex.default()
        with open(SCENE_CLASSES, encoding="utf-8") as handle:
            self.class_presets: dict[str, list[str]] = json.load(handle)["classes"]
        for name, ids in (classes or {}).items():
            self.class_presets[normalise_class_name(name)] = list(ids)
        unknown = sorted({p for ids in self.class_presets.values() for p in ids} - set(self.presets.presets))
        if unknown:
            raise ConfigError(f"scene classes name presets that do not exist: {unknown}", key="classes")
        self.synonyms = synonyms

    def presets_for(self, class_name: str) -> list[Preset]:
        """The presets a class stands for: from the class map, else the presets whose English
        name or synonym is the class name (or its singular)."""
        key = normalise_class_name(class_name)
        if key in self.class_presets:
            return [self.presets[p] for p in self.class_presets[key]]
        for word in (key, key[:-1] if key.endswith("s") else key):
            found = self.presets.search(word, "en")
            if found:
                return found[:2]
        return []

    def phrases(self, class_name: str, language: str = "en") -> list[str]:
        """How the class is named inside a prompt: preset names, then a few synonyms."""
        presets = self.presets_for(class_name)
        if not presets:
            # no preset knows it: the class's own words are the best we have (English only)
            log.warning("scene class %r matches no OSM preset; prompting with its own name",
                        class_name)
            return [normalise_class_name(class_name) or class_name]
        phrases = [object_name(p, language, 1, "area") for p in presets]
        if language == "en":
            # the benchmark's own word ("forest") is often the plainest English name
            phrases.append(normalise_class_name(class_name))
        for preset in presets:
            terms = preset.synonyms(language)[: self.synonyms]
            # iD stores synonyms in lower case; German nouns are capitalised
            phrases.extend(t[:1].upper() + t[1:] if language == "de" else t for t in terms)
        return list(dict.fromkeys(phrases))

    def class_prompts(
        self, classes: Sequence[str], templates: Sequence[str] | None = None, language: str = "en"
    ) -> dict[str, list[str]]:
        """Prompt ensembles per class: every phrase in every template of ``language``."""
        if templates is None:
            if language not in TEMPLATES:
                raise ValueError(f"no prompt templates for {language!r}; choose from "
                                 f"{sorted(TEMPLATES)} or pass templates=")
            templates = TEMPLATES[language]
        prompts = {}
        for name in classes:
            texts = [t.format(p) for p in self.phrases(name, language) for t in templates]
            prompts[name] = [t[:1].upper() + t[1:] for t in texts]
        return prompts

    def facets(self, concept: str) -> dict[str, list[str]]:
        """Names per language and English synonyms of a scene class or a preset id."""
        presets = [self.presets[concept]] if concept in self.presets else self.presets_for(concept)
        facets: dict[str, list[str]] = {}
        for language in self.presets.languages:
            names = [p.name(language) for p in presets if language in p.names]
            if names:
                facets[f"name_{language}"] = list(dict.fromkeys(names))
        synonyms = [s for p in presets for s in p.synonyms("en")]
        if synonyms:
            facets["synonyms"] = list(dict.fromkeys(synonyms))
        return facets
