"""Scene-class knowledge for zero-shot remote-sensing classification, in several languages.

A scene class ("forest", RSSCN7's "aGrass", EuroSAT's "SeaLake") is mapped to iD presets
(knowledge/scene_classes.json); its prompts are the presets' names and synonyms in the asked
language, put into prompt templates written the way :mod:`captions` writes its captions
("An aerial image of a park."), so a model pre-trained on OSM captions meets familiar text at
zero-shot time. Names come from the iD preset translations (RS-M-CLIP-like multilingual prompts).

The AID and RSSCN7 classes also have a full knowledge entry (knowledge/scene_knowledge.json,
built by :mod:`knowledge_build`): the defining presets with their names and search terms, the
presets seen inside such a scene (an airport's runways, aprons, terminals) and a few sentences on
what the scene looks like from above, which name no class. With ``captions="knowledge"`` the
training captions of an image are its class's entry, and with ``prompts="knowledge"`` the
zero-shot prompts are the same entry; ``"names"`` for either uses the bare class name in the
templates, the baseline the entries are measured against. The point of the descriptions is
transfer to classes never seen in training: an unseen class is matched on the visual words
("rows of parked cars", "oval running track") that the seen classes were trained with.
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
SCENE_KNOWLEDGE = Path(__file__).with_name("knowledge") / "scene_knowledge.json"
#: "presets": preset names (and ``synonyms`` terms) in the templates; "names": the class name in
#: the templates; "knowledge": the class's knowledge entry (see :meth:`knowledge_texts`)
PROMPT_STYLES = ("presets", "names", "knowledge")
CAPTION_STYLES = ("names", "knowledge")

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
LIST_SEPARATORS = {"zh-CN": "、", "ar": "، "}
# iD lists synonyms alphabetically, not by how good they are ("boreal", "cut" for a forest), so
# by default prompts use names only
SYNONYMS_PER_PRESET = 0
# in a knowledge entry the terms are one sentence per preset; iD lists up to ~30 for some presets
TERMS_PER_PRESET = 8


def normalise_class_name(name: str) -> str:
    """A readable class name from a dataset's folder or label name, also the key of the scene
    class map: "AnnualCrop" -> "annual crop" (EuroSAT), "basketball_court" -> "basketball
    court" (RESISC45), "dRiverLake" -> "river lake" (RSSCN7 puts a sort letter before the
    name). Names without separators ("denseresidential", UC Merced) stay as they are: pass
    readable names yourself (``SceneFolderDataset(class_names=...)``, ``classes=``)."""
    name = re.sub(r"^[a-z](?=[A-Z])", "", name.strip())  # RSSCN7's leading sort letter
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(re.sub(r"[_\-/]+", " ", name).split()).lower()


def _templates(language: str, templates: Sequence[str] | None) -> Sequence[str]:
    if templates is not None:
        return templates
    if language not in TEMPLATES:
        raise ValueError(f"no prompt templates for {language!r}; choose from "
                         f"{sorted(TEMPLATES)} or pass templates=")
    return TEMPLATES[language]


@KNOWLEDGE.register_module()
class OSMSceneKnowledge:
    """Zero-shot prompts and facets for scene classes, from the iD presets.

    Args:
        classes: extra or overriding class -> preset-id mappings (normalised names as keys).
        presets: a :class:`PresetIndex` (default: the packaged one).
        synonyms: how many preset synonyms per language join the name in the prompts.
        prompts: zero-shot prompt style, one of :data:`PROMPT_STYLES`.
        captions: training caption style (:meth:`sample_texts`), one of :data:`CAPTION_STYLES`.
        entries: the knowledge entries file (default: the packaged scene_knowledge.json).
    """

    def __init__(
        self,
        classes: Mapping[str, Sequence[str]] | None = None,
        presets: PresetIndex | None = None,
        synonyms: int = SYNONYMS_PER_PRESET,
        prompts: str = "presets",
        captions: str = "knowledge",
        entries: str | Path | None = None,
    ):
        if prompts not in PROMPT_STYLES:
            raise ConfigError(f"must be one of {PROMPT_STYLES}, got {prompts!r}", key="prompts")
        if captions not in CAPTION_STYLES:
            raise ConfigError(f"must be one of {CAPTION_STYLES}, got {captions!r}", key="captions")
        self.prompt_style, self.caption_style = prompts, captions
        self.entries_path = Path(entries or SCENE_KNOWLEDGE)
        with open(self.entries_path, encoding="utf-8") as handle:
            self.entries: dict[str, dict] = json.load(handle)["classes"]
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

    def entry(self, class_name: str) -> dict:
        """The knowledge entry of a class (KeyError naming the file when it has none)."""
        key = normalise_class_name(class_name)
        if key not in self.entries:
            raise KeyError(f"no scene knowledge entry for {class_name!r} ({key!r}) in "
                           f"{self.entries_path}")
        return self.entries[key]

    def knowledge_texts(self, class_name: str, language: str = "en",
                        templates: Sequence[str] | None = None) -> list[str]:
        """A class's entry as text: each defining preset's name in every template, one sentence of
        its search terms per preset, one sentence naming the related presets, and (English) the
        visual descriptions. The defining OSM tags stay in the entry: "aeroway=aerodrome" is not
        language the text tower has read."""
        entry, templates = self.entry(class_name), _templates(language, templates)
        comma = LIST_SEPARATORS.get(language, ", ")

        def name(preset: dict) -> str:
            # iD title-cases English names ("Airport Apron"); inside a sentence they are nouns
            return preset["names"][language].lower() if language == "en" else preset["names"][language]

        texts = [t.format(name(p)) for p in entry["presets"] for t in templates]
        for preset in entry["presets"]:
            terms = [t for t in preset["terms"][language]
                     if t.casefold() != name(preset).casefold()][:TERMS_PER_PRESET]
            if terms:
                texts.append(templates[0].format(comma.join([name(preset)] + terms)))
        if entry["related"]:
            texts.append(templates[0].format(comma.join(name(p) for p in entry["related"])))
        if language == "en":
            texts += entry["visual"]
        return list(dict.fromkeys(t[:1].upper() + t[1:] for t in texts))

    def name_texts(self, class_name: str, language: str = "en",
                   templates: Sequence[str] | None = None) -> list[str]:
        """The bare class name ("dense residential") in every template: the baseline."""
        name = normalise_class_name(class_name) or class_name
        return [t.format(name)[:1].upper() + t.format(name)[1:]
                for t in _templates(language, templates)]

    def sample_texts(self, class_name: str, language: str = "en") -> list[str]:
        """The captions (facets) of a training image of this class, in the caption style."""
        if self.caption_style == "names":
            return self.name_texts(class_name, language)
        return self.knowledge_texts(class_name, language)

    def class_prompts(
        self, classes: Sequence[str], templates: Sequence[str] | None = None, language: str = "en"
    ) -> dict[str, list[str]]:
        """Prompt ensembles per class in the prompt style; for "presets", every phrase in every
        template of ``language``."""
        if self.prompt_style == "names":
            return {name: self.name_texts(name, language, templates) for name in classes}
        if self.prompt_style == "knowledge":
            return {name: self.knowledge_texts(name, language, templates) for name in classes}
        templates = _templates(language, templates)
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
