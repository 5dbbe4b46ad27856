"""Curated chest X-ray knowledge: facets for training texts and prompts for zero-shot.

``knowledge/cxr_findings.json`` holds, for every finding of :mod:`.reports`, a definition, its
radiographic appearance, typical location and what it is confused with (the facets of DeViDe,
Luo et al. 2024), written for this project. When the user has a UMLS licence, the definitions of
the matching UMLS concepts are merged in as an extra ``umls_definition`` facet.

Two consumers:

* datasets call :meth:`CXRKnowledge.facet_texts` / :func:`compose_text` to turn an image's report
  and labels into a list of facets (any one is a valid caption; the collate samples one);
* ``ZeroShotClassification`` calls :meth:`class_prompts` and, for multi-label data,
  :meth:`negative_prompts` (each class is scored positive-vs-negative prompt, as in CheXzero).
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import KNOWLEDGE

from .reports import report_body, split_sentences

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).with_name("knowledge") / "cxr_findings.json"
#: facets that describe what the image shows; "confused_with" names other diseases, so it is
#: offered by facets() but not used as a positive caption by default
TRAINING_FACETS = ("definition", "appearance", "location")
FACET_NAMES = ("name", "definition", "appearance", "location", "confused_with", "umls_definition")

# UMLS semantic types (TUIs of the UMLS Semantic Network) a concept must have for its definition
# to be merged into a finding: short synonyms are ambiguous ("mass" is also a physical quantity,
# "density" a property, "TB" a terabyte), and the type tells the senses apart.
DISORDER_TYPES = (
    "T019",  # Congenital Abnormality
    "T020",  # Acquired Abnormality
    "T033",  # Finding
    "T037",  # Injury or Poisoning
    "T046",  # Pathologic Function
    "T047",  # Disease or Syndrome
    "T184",  # Sign or Symptom
    "T190",  # Anatomical Abnormality
    "T191",  # Neoplastic Process
)
DEVICE_TYPES = (
    "T073",  # Manufactured Object
    "T074",  # Medical Device
    "T203",  # Drug Delivery Device
)
#: per-finding defaults; every other finding takes DISORDER_TYPES
DEFAULT_UMLS_TYPES = {"Support Devices": DEVICE_TYPES}


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"knowledge file {path}: {exc}") from exc
    for name, entry in data.get("findings", {}).items():
        missing = {"definition", "appearance", "location", "confused_with"} - set(entry)
        if missing:
            raise ConfigError(f"knowledge file {path}: finding {name!r} lacks {sorted(missing)}")
    return data


@KNOWLEDGE.register_module()
class CXRKnowledge:
    """Chest X-ray knowledge base.

    Args:
        path: the knowledge JSON (default: the curated file shipped with facetvlp).
        umls: optional UMLS source for extra definitions: ``{"index": "umls-....sqlite"}`` for a
            built index, or the keyword arguments of :func:`.umls.build_umls_index`
            (``meta_dir``, ``cache_dir``, ``sources`` ...).
        max_umls_definitions: at most this many UMLS definitions per finding.
        umls_semantic_types: which UMLS semantic types (TUIs or names) a concept must have for
            its definitions to be merged, ``{finding: [...], "default": [...]}``; findings not
            named take ``"default"``. Unset: :data:`DEFAULT_UMLS_TYPES`, else
            :data:`DISORDER_TYPES`. ``None`` as a value turns the filter off for that finding.
    """

    languages = ("en",)

    def __init__(self, path: str | os.PathLike | None = None, umls: dict | None = None,
                 max_umls_definitions: int = 3, umls_semantic_types: dict | None = None):
        self.path = str(path or DEFAULT_PATH)
        data = _load(self.path)
        self.findings: dict[str, dict[str, Any]] = {name: dict(entry) for name, entry in data["findings"].items()}
        self.templates = data["templates"]
        self._by_key = {}
        for name, entry in self.findings.items():
            for alias in [name, *entry.get("synonyms", [])]:
                self._by_key.setdefault(_key(alias), name)
        if umls:
            self._merge_umls(umls, max_umls_definitions, umls_semantic_types or {})

    # -- lookup ---------------------------------------------------------------------------

    def resolve(self, concept: str) -> str | None:
        """The finding a class name refers to ("PNEUMONIA", "enlarged heart", "normal"), or None."""
        return self._by_key.get(_key(concept))

    def facets(self, concept: str) -> dict[str, list[str]]:
        """Raw facet texts of a finding: name (with synonyms), definition, appearance, location,
        confused_with and, when UMLS is merged, umls_definition. Unknown concepts give {}."""
        name = self.resolve(concept)
        if name is None:
            return {}
        entry = self.findings[name]
        out = {
            "name": [name, *entry.get("synonyms", [])],
            "definition": [entry["definition"]],
            "appearance": list(entry["appearance"]),
            "location": list(entry["location"]),
            "confused_with": list(entry["confused_with"]),
        }
        if entry.get("umls_definition"):
            out["umls_definition"] = list(entry["umls_definition"])
        return out

    def facet_texts(self, concept: str, facets: Sequence[str] = TRAINING_FACETS) -> list[str]:
        """Self-contained sentences for the chosen facets, each naming the finding."""
        unknown = set(facets) - set(FACET_NAMES)
        if unknown:
            raise ConfigError(f"unknown knowledge facet(s) {sorted(unknown)}; choose from {', '.join(FACET_NAMES)}")
        raw = self.facets(concept)
        if not raw:
            return []
        name = raw["name"][0].lower()
        texts = []
        for facet in facets:
            for text in raw.get(facet, []):
                if facet in ("definition", "umls_definition"):
                    texts.append(f"{name}: {text}")
                elif facet == "appearance":
                    texts.append(f"chest x-ray with {name}: {text}.")
                elif facet == "location":
                    texts.append(f"{name} seen in {text}.")
                elif facet == "confused_with":
                    texts.append(f"{name} can be mistaken for {text}.")
                else:  # "name"
                    texts.append(self.templates["label"][0].format(text.lower()))
        return texts

    # -- zero-shot prompts ------------------------------------------------------------------

    def _check_language(self, language: str) -> None:
        if language not in self.languages:
            raise ConfigError(f"CXRKnowledge has prompts in {', '.join(self.languages)} only, not {language!r}")

    def class_prompts(self, classes: Sequence[str], templates: Sequence[str] | None = None,
                      language: str = "en", expand: bool = True) -> dict[str, list[str]]:
        """Prompt ensemble per class: every template with the finding's name and synonyms and,
        with ``expand``, its appearance sentences (knowledge-expanded prompts)."""
        self._check_language(language)
        templates = list(templates or self.templates["positive"])
        prompts = {}
        for cls in classes:
            name = self.resolve(cls)
            if name is None:
                log.warning("no knowledge for class %r: plain template prompts only", cls)
                prompts[cls] = [t.format(_key(cls)) for t in templates]
                continue
            names = [n.lower() for n in self.facets(name)["name"]]
            prompts[cls] = [t.format(n) for t in templates for n in names]
            if expand:
                prompts[cls] += self.facet_texts(name, ("appearance",))
        return prompts

    def negative_prompts(self, classes: Sequence[str], language: str = "en") -> dict[str, list[str]]:
        """Prompts that deny each class ("a chest x-ray with no pneumothorax")."""
        self._check_language(language)
        out = {}
        for cls in classes:
            name = self.resolve(cls)
            entry = self.findings.get(name, {})
            if entry.get("negative_prompts"):
                out[cls] = list(entry["negative_prompts"])
                continue
            names = [n.lower() for n in self.facets(name)["name"]] if name else [_key(cls)]
            out[cls] = [t.format(n) for t in self.templates["negative"] for n in names]
        return out

    # -- UMLS ---------------------------------------------------------------------------------

    def _allowed_types(self, finding: str, config: dict) -> frozenset[str] | None:
        if finding in config:
            wanted = config[finding]
        elif "default" in config:
            wanted = config["default"]
        else:
            wanted = DEFAULT_UMLS_TYPES.get(finding, DISORDER_TYPES)
        return None if wanted is None else frozenset(wanted)

    def _merge_umls(self, umls: dict, limit: int, semantic_types: dict) -> None:
        from .umls import UMLSIndex, build_umls_index

        unknown = set(semantic_types) - set(self.findings) - {"default"}
        if unknown:
            raise ConfigError(f"umls_semantic_types names unknown findings {sorted(unknown)}")
        umls = dict(umls)
        index = UMLSIndex(umls.pop("index")) if "index" in umls else build_umls_index(**umls)
        merged = 0
        for name, entry in self.findings.items():
            allowed = self._allowed_types(name, semantic_types)
            definitions: list[str] = []
            for alias in [name, *entry.get("synonyms", [])]:
                for concept in index.lookup(alias):
                    if allowed is not None and not any(
                            tui in allowed or sty in allowed for tui, sty in concept.semantic_types):
                        continue  # another sense of the same words
                    for _, text in concept.definitions:
                        if text not in definitions:
                            definitions.append(text)
            if definitions:
                entry["umls_definition"] = definitions[:limit]
                merged += 1
        index.close()
        log.info("UMLS definitions merged for %d of %d findings", merged, len(self.findings))


def compose_text(
    report: str | None,
    labels: Iterable[str],
    knowledge: CXRKnowledge | None,
    mode: str = "facets",
    facets: Sequence[str] = TRAINING_FACETS,
    label_template: str = "a chest x-ray showing {}",
) -> list[str]:
    """The texts (facets) of one image.

    ``mode``: "facets" = report sentences + knowledge facets of each positive label (falling back
    to a label prompt when a label has no knowledge); "report" = report sentences only (label
    prompts when there is no report); "label" = one label prompt per positive label (the
    label-prompt baseline).
    """
    if mode not in ("facets", "report", "label"):
        raise ConfigError(f"text mode must be 'facets', 'report' or 'label', got {mode!r}")
    labels = list(labels)
    label_prompts = [label_template.format(_key(label)) for label in labels]
    sentences = split_sentences(report_body(report)) if report and mode != "label" else []
    if mode == "label":
        texts = label_prompts
    elif mode == "report":
        texts = sentences or label_prompts
    else:
        texts = list(sentences)
        for label, prompt in zip(labels, label_prompts):
            texts.extend((knowledge.facet_texts(label, facets) if knowledge else []) or [prompt])
    return texts or ["a chest x-ray"]
