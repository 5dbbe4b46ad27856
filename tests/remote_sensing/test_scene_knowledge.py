"""Scene knowledge entries (knowledge/scene_knowledge.json): every AID and RSSCN7 class has one in
every caption language, its schema-derived parts equal what the iD schema files say (read here
with plain json, not through presets.py), and knowledge / name captions and prompts come from it.
The AID unseen-class configs use the committed splits and build on the real data."""

from __future__ import annotations

import json
import random
import re

import pytest
import torch

import facetvlp.domains.remote_sensing  # noqa: F401  (registers the remote-sensing types)
from facetvlp.core.config import load_config
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS, EVALUATORS, build
from facetvlp.domains.remote_sensing.knowledge import (
    TEMPLATES,
    OSMSceneKnowledge,
    normalise_class_name,
)
from facetvlp.domains.remote_sensing.knowledge_build import (
    SCENE_KNOWLEDGE,
    build_scene_knowledge,
)

# the class folders, as AID's and RSSCN7's PROVENANCE list them
AID = ["Airport", "BareLand", "BaseballField", "Beach", "Bridge", "Center", "Church", "Commercial",
       "DenseResidential", "Desert", "Farmland", "Forest", "Industrial", "Meadow",
       "MediumResidential", "Mountain", "Park", "Parking", "Playground", "Pond", "Port",
       "RailwayStation", "Resort", "River", "School", "SparseResidential", "Square", "Stadium",
       "StorageTanks", "Viaduct"]
RSSCN7 = ["aGrass", "bField", "cIndustry", "dRiverLake", "eForest", "fResident", "gParking"]
LANGUAGES = ["en", "de", "fr", "es", "pt-BR", "zh-CN", "ar"]
SEPARATORS = re.compile(r"[,\n，、،]")


@pytest.fixture(scope="module")
def packaged():
    return json.loads(SCENE_KNOWLEDGE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def schema_dir(shared_data):
    return shared_data / "remote_sensing" / "osm_tagging_schema"


@pytest.fixture(scope="module")
def raw(schema_dir):
    presets = json.loads((schema_dir / "presets.json").read_text(encoding="utf-8"))
    words = {lang: json.loads((schema_dir / "translations" / f"{lang}.min.json")
                              .read_text(encoding="utf-8"))[lang]["presets"]["presets"]
             for lang in LANGUAGES}
    return presets, words


def test_every_class_has_an_entry_in_every_language(packaged):
    knowledge = OSMSceneKnowledge(prompts="knowledge")
    assert packaged["languages"] == LANGUAGES
    for folder in AID + RSSCN7:
        entry = knowledge.entry(folder)
        assert entry["presets"] and entry["related"] and len(entry["visual"]) >= 2
        for lang in LANGUAGES:
            texts = knowledge.knowledge_texts(folder, lang)
            # every preset is named in every language (where the schema has no name, in English:
            # test_schema_parts_match_the_schema_files checks those are exactly the listed ones)
            for preset in entry["presets"] + entry["related"]:
                name = preset["names"][lang]
                assert any(name.lower() in t.lower() for t in texts), (folder, lang, name)
            # the visual descriptions are English only (docs/remote_sensing.md says so)
            assert (set(entry["visual"]) <= set(texts)) == (lang == "en")


def test_schema_parts_match_the_schema_files(packaged, raw):
    presets, words = raw
    listed = {(f["class"], f["language"], f["preset"]) for f in packaged["fallbacks"]}
    found = set()
    for name, entry in packaged["classes"].items():
        for part in ("presets", "related"):
            for preset in entry[part]:
                pid = preset["id"]
                assert preset["tags"] == presets[pid]["tags"]
                # a preset may take its words from another one: "name": "{education/school}"
                borrowed = str(presets[pid].get("name", ""))

                def text(lang):
                    return words[lang].get(pid) or (
                        words[lang].get(borrowed[1:-1], {}) if borrowed.startswith("{") else {})

                for lang in LANGUAGES:
                    if text(lang).get("name"):
                        assert preset["names"][lang] == text(lang)["name"]
                    else:
                        found.add((name, lang, pid))
                        assert preset["names"][lang] == text("en")["name"]
                    if part == "presets":
                        expected = [w.strip() for field in ("terms", "aliases")
                                    for w in SEPARATORS.split(text(lang).get(field, ""))
                                    if w.strip()]
                        assert preset["terms"][lang] == list(dict.fromkeys(expected))
    # the fallback list is exactly the pairs the schema leaves without a name
    assert found == listed and found  # amenity/school has no Arabic name in schema 6.19.2


def test_packaged_file_is_what_the_build_script_writes(packaged, schema_dir):
    assert build_scene_knowledge(schema_dir) == packaged


def test_visual_descriptions_never_name_their_class(packaged):
    for name, entry in packaged["classes"].items():
        for text in entry["visual"]:
            assert not re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE), (name, text)


def test_knowledge_and_name_prompts_and_captions():
    knowledge = OSMSceneKnowledge(prompts="knowledge", captions="knowledge")
    names = OSMSceneKnowledge(prompts="names", captions="names")
    prompts = knowledge.class_prompts(["Airport", "gParking"])
    assert "An aerial image of runway, taxiway, airport apron, airport terminal, hangar." in \
        prompts["Airport"]
    assert prompts["Airport"][0] == "An aerial image of airport."
    assert knowledge.entry("gParking")["visual"][0] in prompts["gParking"]
    assert knowledge.sample_texts("Airport") == prompts["Airport"]
    assert names.class_prompts(["DenseResidential"], language="de") == {
        "DenseResidential": [t.format("dense residential") for t in TEMPLATES["de"]]}
    assert names.sample_texts("dRiverLake") == [
        "An aerial image of river lake.", "A satellite image of river lake.",
        "River lake seen from above."]
    # classes may share presets (bridge / viaduct: man_made/bridge), never their descriptions
    ensembles = knowledge.class_prompts(AID)
    visual = [t for c in AID for t in knowledge.entry(c)["visual"]]
    assert len(visual) == len(set(visual))
    assert len({tuple(texts) for texts in ensembles.values()}) == len(AID)
    with pytest.raises(KeyError, match="no scene knowledge entry"):
        knowledge.class_prompts(["xyzzy"])
    with pytest.raises(ConfigError, match="prompts"):
        OSMSceneKnowledge(prompts="both")
    # the default prompts are the preset names, as before
    assert OSMSceneKnowledge().class_prompts(["gParking"])["gParking"][0] == \
        "An aerial image of a parking lot."


def test_knowledge_scene_dataset(shared_data):
    root = shared_data / "remote_sensing/aid_scenes_150px/AID"
    options = dict(type="KnowledgeSceneDataset", root=str(root), classes=["Port", "Airport"],
                   image_size=32)
    train = build(DATASETS, dict(options, split="train"))
    val = build(DATASETS, dict(options, split="val"))
    every = build(DATASETS, dict(options, split="all"))
    assert train.classes == ["port", "airport"]  # in the order asked for
    assert len(every) == 28 and len(val) == 4 and len(train) == 24  # 14 per class, every 5th val
    assert {p for p, _ in train.items}.isdisjoint(p for p, _ in val.items)
    assert {p for p, _ in train.items} | {p for p, _ in val.items} == {p for p, _ in every.items}
    sample = every[0]
    assert sample["meta"]["source"].startswith("Port/") and sample["labels"].tolist() == [1.0, 0.0]
    assert sample["text"] == OSMSceneKnowledge().knowledge_texts("Port")
    # augmentation: the image is one of the 8 rotations / flips of the plain one
    turned = build(DATASETS, dict(options, split="all", augment=True))
    plain = sample["image"]
    variants = [torch.rot90(plain, k, dims=(1, 2)) for k in range(4)]
    variants += [v.flip(-1) for v in variants]
    seen = set()
    for epoch in range(6):
        turned.set_epoch(epoch)
        image = turned[0]["image"]
        seen.add(next(i for i, v in enumerate(variants) if torch.equal(v, image)))
    assert len(seen) > 1
    with pytest.raises(ConfigError, match="no class folder"):
        build(DATASETS, dict(options, classes=["Harbour"]))


def test_aid_configs_use_the_committed_split_a(repo_root, shared_data, monkeypatch):
    monkeypatch.chdir(repo_root)
    splits = json.loads((repo_root / "benchmarks/zeroshot_aid_splits.json").read_text())
    unseen = splits["splits"]["A"]["unseen"]
    # split C is the random draw it says it is
    assert splits["splits"]["C"]["unseen"] == sorted(random.Random(2026).sample(AID, 6))
    for recipe, captions in (("knowledge", "knowledge"), ("names", "names")):
        cfg = load_config(str(repo_root / f"configs/remote_sensing/aid_zeroshot_{recipe}_cpu.py"))
        assert cfg.train_data.dataset.classes == [c for c in AID if c not in unseen]
        assert cfg.train_data.dataset.knowledge.captions == captions
        for name in ("unseen_knowledge", "unseen_names"):
            evaluator = build(EVALUATORS, cfg.eval[name])
            assert evaluator.dataset.classes == [normalise_class_name(c) for c in unseen]
            assert len(evaluator.dataset) == 84
