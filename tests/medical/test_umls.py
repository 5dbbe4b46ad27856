"""UMLS streaming index on small fixtures written in the real RRF layouts (trailing "|" included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetvlp.domains.medical import umls
from facetvlp.domains.medical.umls import UMLSIndex, UMLSReadError, build_umls_index, normalize

# CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
MRCONSO = """\
C0000001|ENG|S|L0000011|VO|S0000011|Y|A0000011||M0000001|D000001|MSH|ET|D000001|Effusion, Pleural|0|N||
C0000001|ENG|P|L0000010|PF|S0000010|Y|A0000010||M0000001|D000001|MSH|MH|D000001|Pleural Effusion|0|N||
C0000001|ENG|S|L0000012|PF|S0000012|Y|A0000012||C0000001||NCI|SY|C0001|Pleural Fluid Collection|0|N||
C0000001|FRE|P|L0000013|PF|S0000013|Y|A0000013||M0000001|D000001|MSHFRE|MH|D000001|Epanchement pleural|3|N||
C0000001|ENG|S|L0000014|PF|S0000014|N|A0000014||||SNOMEDCT_US|SY|1000|Hydrothorax old name|9|O||
C0000002|ENG|P|L0000020|PF|S0000020|Y|A0000020||M0000002|D000002|MSH|MH|D000002|Cardiomegaly|0|N||
C0000002|ENG|S|L0000021|PF|S0000021|Y|A0000021||||SNOMEDCT_US|SY|2000|Enlarged heart|9|N||
C0000003|ENG|P|L0000030|PF|S0000030|Y|A0000030||M0000003|D000003|MSH|MH|D000003|Lung|0|N||
C0000004|FRE|P|L0000040|PF|S0000040|Y|A0000040||M0000004|D000004|MSHFRE|MH|D000004|Atelectasie|3|N||
"""
# CUI|TUI|STN|STY|ATUI|CVF|
MRSTY = """\
C0000001|T046|B2.2.1.2|Pathologic Function|AT0000001||
C0000002|T047|B2.2.1.2.1|Disease or Syndrome|AT0000002||
C0000002|T033|A2.2|Finding|AT0000003||
C0000003|T023|A1.2.3.1|Body Part, Organ, or Organ Component|AT0000004||
C0000004|T047|B2.2.1.2.1|Disease or Syndrome|AT0000005||
"""
# CUI|AUI|ATUI|SATUI|SAB|DEF|SUPPRESS|CVF|
MRDEF = """\
C0000001|A0000010|AT0000101||MSH|Fluid in the pleural space.|N||
C0000001|A0000012|AT0000102||NCI|An abnormal collection of fluid between the pleural layers.|N||
C0000002|A0000020|AT0000103||MSH|Enlargement of the heart.|N||
C0000002|A0000021|AT0000104||MSH|A withdrawn definition.|O||
C0000003|A0000030|AT0000105||MSH|An organ of respiration.|N||
"""


def write_meta(folder: Path, conso=MRCONSO, sty=MRSTY, mrdef=MRDEF) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MRCONSO.RRF").write_text(conso, encoding="utf-8")
    (folder / "MRSTY.RRF").write_text(sty, encoding="utf-8")
    (folder / "MRDEF.RRF").write_text(mrdef, encoding="utf-8")
    return folder


@pytest.fixture()
def meta(tmp_path):
    return write_meta(tmp_path / "META")


def test_english_index_with_preferred_names_synonyms_definitions_and_types(meta, tmp_path):
    index = build_umls_index(meta, tmp_path / "cache")
    assert len(index) == 3  # C0000004 has only a French name
    effusion = index.concept("C0000001")
    # the TS=P / STT=PF / ISPREF=Y atom wins although an ET row comes first in the file
    assert effusion.name == "Pleural Effusion"
    assert set(effusion.synonyms) == {"Effusion, Pleural", "Pleural Fluid Collection"}  # no French, no obsolete
    assert effusion.definitions == (("MSH", "Fluid in the pleural space."),
                                    ("NCI", "An abnormal collection of fluid between the pleural layers."))
    assert effusion.semantic_types == (("T046", "Pathologic Function"),)
    heart = index.concept("C0000002")
    assert heart.definitions == (("MSH", "Enlargement of the heart."),)  # the suppressed one is dropped
    assert [t for t, _ in heart.semantic_types] == ["T033", "T047"]
    assert index.concept("C0000004") is None


def test_lookup_ignores_case_and_punctuation(meta, tmp_path):
    index = build_umls_index(meta, tmp_path / "cache")
    assert [c.cui for c in index.lookup("pleural effusion")] == ["C0000001"]
    assert index.lookup("fluid collection pleural") == []  # word order matters
    assert [c.cui for c in index.lookup("effusion, PLEURAL")] == ["C0000001"]
    assert [c.cui for c in index.lookup("enlarged-heart")] == ["C0000002"]
    assert normalize("  Effusion,  Pleural ") == "effusion pleural"


def test_filters_on_language_source_and_semantic_type(meta, tmp_path):
    french = build_umls_index(meta, tmp_path / "c1", languages=("FRE",))
    assert french.concept("C0000004").name == "Atelectasie"
    assert len(french) == 2
    msh_only = build_umls_index(meta, tmp_path / "c2", sources=("MSH",))
    assert msh_only.lookup("enlarged heart") == []  # a SNOMED synonym
    assert msh_only.concept("C0000001").definitions == (("MSH", "Fluid in the pleural space."),)
    disorders = build_umls_index(meta, tmp_path / "c3", semantic_types=("T047", "Pathologic Function"))
    assert disorders.concept("C0000003") is None  # a body part
    assert {disorders.concept(c).cui for c in ("C0000001", "C0000002")} == {"C0000001", "C0000002"}
    with_obsolete = build_umls_index(meta, tmp_path / "c4", include_suppressed=True)
    assert "Hydrothorax old name" in with_obsolete.concept("C0000001").synonyms


def test_cache_is_reused_and_invalidated_by_a_changed_file(meta, tmp_path, monkeypatch):
    first = build_umls_index(meta, tmp_path / "cache")

    def fail(*args, **kwargs):
        raise AssertionError("the cached index should have been reused")

    monkeypatch.setattr(umls, "read_rrf", fail)
    again = build_umls_index(meta, tmp_path / "cache")
    assert again.path == first.path
    monkeypatch.undo()
    with open(meta / "MRDEF.RRF", "a", encoding="utf-8") as handle:
        handle.write("C0000003|A0000030|AT0000106||NCI|The organ of breathing.|N||\n")
    rebuilt = build_umls_index(meta, tmp_path / "cache")
    assert rebuilt.path != first.path
    assert ("NCI", "The organ of breathing.") in rebuilt.concept("C0000003").definitions
    assert len(list((tmp_path / "cache").glob("*.partial-*"))) == 0


def test_bad_files_raise_typed_errors_naming_file_and_line(tmp_path):
    with pytest.raises(UMLSReadError, match="MRDEF.RRF: missing"):
        meta = tmp_path / "m1"
        write_meta(meta)
        (meta / "MRDEF.RRF").unlink()
        build_umls_index(meta, tmp_path / "cache")
    short = MRCONSO.replace("C0000002|ENG|P|L0000020|PF|", "C0000002|ENG|P|", 1)
    with pytest.raises(UMLSReadError, match=r"MRCONSO.RRF: line 6: expected 18"):
        build_umls_index(write_meta(tmp_path / "m2", conso=short), tmp_path / "cache")
    with pytest.raises(UMLSReadError, match=r"MRSTY.RRF: line 1: .* not a CUI"):
        build_umls_index(write_meta(tmp_path / "m3", sty="CUI|TUI|STN|STY|ATUI|CVF|\n"), tmp_path / "cache")
    meta = write_meta(tmp_path / "m4")
    (meta / "MRDEF.RRF").write_bytes(MRDEF.encode() + b"C0000003|A1|AT1||MSH|caf\xe9|N||\n")
    with pytest.raises(UMLSReadError, match=r"MRDEF.RRF: line 6: not UTF-8"):
        build_umls_index(meta, tmp_path / "cache")
    with pytest.raises(UMLSReadError, match="no UMLS index here"):
        UMLSIndex(tmp_path / "nothing.sqlite")
