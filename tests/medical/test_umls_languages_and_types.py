"""UMLS on small RRF fixtures in the real layouts: lookups of non-English names (accents, other
scripts), and the knowledge merge keeping only concepts of the finding's semantic types."""

from __future__ import annotations

import pytest

from facetvlp.core.errors import ConfigError
from facetvlp.domains.medical.knowledge import CXRKnowledge
from facetvlp.domains.medical.umls import build_umls_index, normalize

# CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
MRCONSO = """\
C0032227|ENG|P|L1|PF|S1|Y|A1||M1|D1|MSH|MH|D1|Pleural Effusion|0|N||
C0032227|FRE|P|L2|PF|S2|Y|A2||M1|D1|MSHFRE|MH|D1|Épanchement pleural|3|N||
C0032227|GER|P|L3|PF|S3|Y|A3||M1|D1|MSHGER|MH|D1|Pleuraerguss|3|N||
C0032285|CHI|P|L4|PF|S4|Y|A4||M2|D2|MSHCHI|MH|D2|肺炎|3|N||
C0032285|ENG|P|L5|PF|S5|Y|A5||M2|D2|MSH|MH|D2|Pneumonia|0|N||
C0577559|ENG|P|L6|PF|S6|Y|A6||||SNOMEDCT_US|PT|6|Mass|9|N||
C0024936|ENG|P|L7|PF|S7|Y|A7||||NCI|PT|7|Mass|0|N||
C0041296|ENG|P|L8|PF|S8|Y|A8||M3|D3|MSH|MH|D3|Tuberculosis|0|N||
C0041296|ENG|S|L9|PF|S9|Y|A9||||NCI|AB|9|TB|0|N||
C1705829|ENG|P|L10|PF|S10|Y|A10||||NCI|AB|10|TB|0|N||
C0011892|ENG|P|L11|PF|S11|Y|A11||||NCI|PT|11|Density|0|N||
"""
# CUI|TUI|STN|STY|ATUI|CVF|
MRSTY = """\
C0032227|T046|B2.2.1.2|Pathologic Function|AT1||
C0032285|T047|B2.2.1.2.1|Disease or Syndrome|AT2||
C0577559|T033|A2.2|Finding|AT3||
C0024936|T081|A2.1.3|Quantitative Concept|AT4||
C0041296|T047|B2.2.1.2.1|Disease or Syndrome|AT5||
C1705829|T081|A2.1.3|Quantitative Concept|AT6||
C0011892|T081|A2.1.3|Quantitative Concept|AT7||
"""
# CUI|AUI|ATUI|SATUI|SAB|DEF|SUPPRESS|CVF|
MRDEF = """\
C0032227|A1|AT11||MSH|Fluid in the pleural space (fixture).|N||
C0032285|A5|AT12||MSH|Inflammation of the lung (fixture).|N||
C0577559|A6|AT13||SNOMEDCT_US|A lump or swelling (fixture).|N||
C0024936|A7|AT14||NCI|The quantity of matter in a body (fixture).|N||
C0041296|A8|AT15||MSH|Infection by Mycobacterium tuberculosis (fixture).|N||
C1705829|A10|AT16||NCI|A unit of information, 10^12 bytes (fixture).|N||
C0011892|A11|AT17||NCI|Mass per unit volume (fixture).|N||
"""


@pytest.fixture()
def meta(tmp_path):
    folder = tmp_path / "META"
    folder.mkdir()
    for name, text in (("MRCONSO.RRF", MRCONSO), ("MRSTY.RRF", MRSTY), ("MRDEF.RRF", MRDEF)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_normalize_keeps_letters_of_every_script():
    assert normalize("Épanchement  PLEURAL") == "épanchement pleural"
    assert normalize("STRASSE") == normalize("Straße")
    assert normalize("肺炎。") == "肺炎"
    assert normalize("ﬁbrosis") == "fibrosis"  # compatibility ligature unfolded (NFKC)


def test_non_english_names_are_found(meta, tmp_path):
    index = build_umls_index(meta, tmp_path / "cache", languages=("ENG", "FRE", "GER", "CHI"))
    assert [c.cui for c in index.lookup("épanchement pleural")] == ["C0032227"]
    assert [c.cui for c in index.lookup("ÉPANCHEMENT, Pleural")] == ["C0032227"]
    assert [c.cui for c in index.lookup("pleuraerguss")] == ["C0032227"]
    assert [c.cui for c in index.lookup("肺炎")] == ["C0032285"]
    assert index.lookup("panchement pleural") == []  # the old ASCII-only key matched this


def test_merge_keeps_the_senses_of_the_findings_semantic_types(meta, tmp_path):
    kb = CXRKnowledge(umls={"meta_dir": meta, "cache_dir": tmp_path / "cache"})
    # "mass" (a Lung Lesion synonym) is a Finding and a Quantitative Concept: only the first merges
    assert kb.facets("Lung Lesion")["umls_definition"] == ["A lump or swelling (fixture)."]
    # "TB" is tuberculosis and a terabyte
    assert kb.facets("Tuberculosis")["umls_definition"] == ["Infection by Mycobacterium tuberculosis (fixture)."]
    # "density" (a Lung Opacity synonym) exists only as a physical quantity here: nothing merges
    assert "umls_definition" not in kb.facets("Lung Opacity")
    assert kb.facets("Pleural Effusion")["umls_definition"] == ["Fluid in the pleural space (fixture)."]


def test_semantic_types_are_configurable_per_finding(meta, tmp_path):
    kb = CXRKnowledge(umls={"meta_dir": meta, "cache_dir": tmp_path / "cache"},
                      umls_semantic_types={"Lung Opacity": ["Quantitative Concept"], "Lung Lesion": None})
    assert kb.facets("Lung Opacity")["umls_definition"] == ["Mass per unit volume (fixture)."]
    assert set(kb.facets("Lung Lesion")["umls_definition"]) == {
        "A lump or swelling (fixture).", "The quantity of matter in a body (fixture)."}
    with pytest.raises(ConfigError, match="Lung Nodule"):
        CXRKnowledge(umls={"meta_dir": meta, "cache_dir": tmp_path / "cache"},
                     umls_semantic_types={"Lung Nodule": ["T033"]})
