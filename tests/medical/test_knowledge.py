"""Curated CXR knowledge: coverage of the finding vocabulary, prompts, facets, UMLS merge."""

from __future__ import annotations

import json

import pytest

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import KNOWLEDGE, build
from facetvlp.domains.medical.knowledge import DEFAULT_PATH, CXRKnowledge, compose_text
from facetvlp.domains.medical.reports import FINDING_NAMES


@pytest.fixture(scope="module")
def kb():
    return CXRKnowledge()


def test_every_extractable_finding_has_all_four_facets():
    data = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))["findings"]
    assert set(data) == set(FINDING_NAMES)
    for name, entry in data.items():
        assert entry["definition"].strip(), name
        for facet in ("appearance", "location", "confused_with"):
            assert entry[facet] and all(t.strip() for t in entry[facet]), (name, facet)


@pytest.mark.parametrize("cls, finding", [
    ("PNEUMONIA", "Pneumonia"), ("NORMAL", "No Finding"), ("No Finding", "No Finding"),
    ("Pleural_Effusion", "Pleural Effusion"), ("enlarged heart", "Cardiomegaly"), ("TB", "Tuberculosis"),
    ("Effusion", "Pleural Effusion"), ("Nodule", "Lung Lesion"), ("Infiltration", "Lung Opacity"),
    ("lung nodule", "Lung Lesion"), ("Pleural_Thickening", "Pleural Other"), ("banana", None),
])
def test_class_names_resolve_through_names_and_synonyms(kb, cls, finding):
    assert kb.resolve(cls) == finding


def test_class_prompts_use_templates_synonyms_and_appearance(kb):
    prompts = kb.class_prompts(["NORMAL", "PNEUMONIA", "banana"])
    assert list(prompts) == ["NORMAL", "PNEUMONIA", "banana"]
    assert "a chest x-ray showing pneumonia" in prompts["PNEUMONIA"]
    assert "a chest x-ray showing lung infection" in prompts["PNEUMONIA"]
    appearance = kb.facets("Pneumonia")["appearance"][0]
    assert any(appearance in p for p in prompts["PNEUMONIA"])
    assert "a chest x-ray showing no acute cardiopulmonary abnormality" in prompts["NORMAL"]
    assert prompts["banana"] == [t.format("banana") for t in kb.templates["positive"]]
    plain = kb.class_prompts(["PNEUMONIA"], templates=["{}"], expand=False)
    assert plain["PNEUMONIA"] == [n.lower() for n in kb.facets("Pneumonia")["name"]]


def test_negative_prompts(kb):
    negatives = kb.negative_prompts(["Pneumothorax", "No Finding"])
    assert "a chest x-ray with no pneumothorax" in negatives["Pneumothorax"]
    assert negatives["No Finding"] == kb.findings["No Finding"]["negative_prompts"]
    with pytest.raises(ConfigError, match="en only"):
        kb.negative_prompts(["Pneumothorax"], language="de")
    with pytest.raises(ConfigError, match="en only"):
        kb.class_prompts(["Pneumothorax"], language="fr")


def test_facet_texts_name_the_finding(kb):
    texts = kb.facet_texts("Cardiomegaly")
    entry = kb.findings["Cardiomegaly"]
    assert len(texts) == 1 + len(entry["appearance"]) + len(entry["location"])
    assert all("cardiomegaly" in t for t in texts)
    assert kb.facet_texts("banana") == []
    with pytest.raises(ConfigError, match="unknown knowledge facet"):
        kb.facet_texts("Cardiomegaly", ("smell",))


def test_compose_text_modes(kb):
    report = "INDICATION: cough. FINDINGS: Mild cardiomegaly. No effusion. IMPRESSION: Cardiomegaly."
    facets = compose_text(report, ["Cardiomegaly"], kb)
    assert facets[:3] == ["Mild cardiomegaly.", "No effusion.", "Cardiomegaly."]
    assert facets[3:] == kb.facet_texts("Cardiomegaly")
    assert compose_text(report, ["Cardiomegaly"], kb, mode="report") == facets[:3]
    assert compose_text(None, ["Cardiomegaly", "Edema"], kb, mode="label") == [
        "a chest x-ray showing cardiomegaly", "a chest x-ray showing edema"]
    assert compose_text(None, ["banana"], kb) == ["a chest x-ray showing banana"]
    assert compose_text(None, [], kb) == ["a chest x-ray"]
    with pytest.raises(ConfigError):
        compose_text(report, [], kb, mode="poem")


def test_registered_and_buildable_from_a_config():
    import facetvlp.domains.medical  # noqa: F401  (registers on import)

    kb = build(KNOWLEDGE, {"type": "CXRKnowledge"}, where="test")
    assert isinstance(kb, CXRKnowledge)


def test_umls_definitions_merge_in(tmp_path):
    meta = tmp_path / "META"
    meta.mkdir()
    (meta / "MRCONSO.RRF").write_text(
        "C0000001|ENG|P|L1|PF|S1|Y|A1||M1|D1|MSH|MH|D1|Pleural Effusion|0|N||\n"
        "C0000002|ENG|P|L2|PF|S2|Y|A2||M2|D2|MSH|MH|D2|Enlarged Heart|0|N||\n", encoding="utf-8")
    (meta / "MRSTY.RRF").write_text(
        "C0000001|T046|B2.2.1.2|Pathologic Function|AT1||\n"
        "C0000002|T033|A2.2|Finding|AT2||\n", encoding="utf-8")
    (meta / "MRDEF.RRF").write_text(
        "C0000001|A1|AT3||MSH|Fluid between the pleural layers (fixture).|N||\n"
        "C0000002|A2|AT4||MSH|A heart that is bigger than normal (fixture).|N||\n", encoding="utf-8")
    kb = CXRKnowledge(umls={"meta_dir": meta, "cache_dir": tmp_path / "cache"})
    assert kb.facets("Pleural Effusion")["umls_definition"] == ["Fluid between the pleural layers (fixture)."]
    # matched through the curated synonym "enlarged heart"
    assert kb.facets("Cardiomegaly")["umls_definition"] == ["A heart that is bigger than normal (fixture)."]
    assert "umls_definition" not in kb.facets("Pneumothorax")
    assert "cardiomegaly: A heart that is bigger than normal (fixture)." in kb.facet_texts(
        "Cardiomegaly", ("umls_definition",))
    # the shipped knowledge itself is not modified for other instances
    assert "umls_definition" not in CXRKnowledge().facets("Cardiomegaly")
