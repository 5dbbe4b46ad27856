"""Report parsing: sections, sentences, negation/uncertainty, and agreement with the IU MeSH index."""

from __future__ import annotations

import csv

import pytest

from facetvlp.domains.medical.reports import (
    CHEXPERT_OBSERVATIONS, FINDING_NAMES, NEGATIVE, POSITIVE, UNCERTAIN, extract_findings, find_mentions,
    iu_mesh_findings, label_vector, report_body, split_sections, split_sentences,
)

MIMIC_STYLE = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ with cough, rule out pneumonia.

 COMPARISON:  None.

 FINDINGS:
 There is mild cardiomegaly. No pleural effusion or pneumothorax.
 Possible left basilar atelectasis.

 IMPRESSION:
 1. Mild cardiomegaly.  2. No pneumonia.
"""


def test_sections_split_on_headers_with_aliases():
    sections = split_sections(MIMIC_STYLE)
    assert sections["preamble"] == "FINAL REPORT"
    assert sections["technique"] == "CHEST (PA AND LAT)"
    assert sections["indication"] == "___ with cough, rule out pneumonia."
    assert sections["comparison"] == "None."
    assert sections["findings"].startswith("There is mild cardiomegaly.")
    assert sections["findings"].endswith("Possible left basilar atelectasis.")
    assert sections["impression"] == "1. Mild cardiomegaly. 2. No pneumonia."
    assert split_sections("History: fever. Conclusion: clear lungs.") == {
        "indication": "fever.", "impression": "clear lungs."}


def test_report_body_leaves_out_the_indication():
    body = report_body(MIMIC_STYLE)
    assert "rule out pneumonia" not in body and "Mild cardiomegaly" in body
    assert report_body("No acute disease.") == "No acute disease."  # no headers: all body


def test_sentences_handle_enumerations_glued_periods_and_decimals():
    text = ("1. Bullous emphysema. 2. Probably scarring in the apex.There is a 2.5 cm nodule. "
            "Normal chest x-XXXX.")
    assert split_sentences(text) == [
        "Bullous emphysema.", "Probably scarring in the apex.", "There is a 2.5 cm nodule.",
        "Normal chest x-XXXX.",
    ]


@pytest.mark.parametrize("text, finding, status", [
    ("There is mild cardiomegaly.", "Cardiomegaly", POSITIVE),
    ("The heart is mildly enlarged.", "Cardiomegaly", POSITIVE),
    ("No pneumothorax, pleural effusion, or focal consolidation.", "Consolidation", NEGATIVE),
    ("No pneumothorax, pleural effusion, or focal consolidation.", "Pleural Effusion", NEGATIVE),
    ("There are no XXXX of a pleural effusion.", "Pleural Effusion", NEGATIVE),
    ("Pneumothorax is not seen.", "Pneumothorax", NEGATIVE),
    ("The previously seen effusion has resolved.", "Pleural Effusion", NEGATIVE),
    ("Left basilar opacity may represent atelectasis.", "Atelectasis", UNCERTAIN),
    ("Left basilar opacity may represent atelectasis.", "Lung Opacity", POSITIVE),
    ("Pneumonia cannot be excluded.", "Pneumonia", UNCERTAIN),
    ("Can not exclude pneumonia.", "Pneumonia", UNCERTAIN),
    ("No focal opacity to suggest pneumonia.", "Pneumonia", NEGATIVE),
    ("Possible small effusion, without pneumothorax.", "Pneumothorax", NEGATIVE),
    ("Possible small effusion, without pneumothorax.", "Pleural Effusion", UNCERTAIN),
    ("No effusion but there is a right lower lobe consolidation.", "Consolidation", POSITIVE),
    ("Subcutaneous emphysema in the neck.", "Emphysema", None),
    ("Small pericardial effusion.", "Pleural Effusion", None),
    ("Calcified granuloma in the right upper lobe.", "Granuloma", POSITIVE),
    ("Calcified granuloma in the right upper lobe.", "Calcification", None),
    ("Right PICC line tip in the SVC.", "Support Devices", POSITIVE),
    ("Blunting of the left costophrenic angle.", "Pleural Effusion", POSITIVE),
])
def test_status_of_each_mention(text, finding, status):
    assert extract_findings(text).get(finding) == status


def test_no_finding_follows_the_chexpert_rule():
    assert extract_findings("Lungs are clear. No effusion. Right PICC line.")["No Finding"] == POSITIVE
    assert "No Finding" not in extract_findings("Possible pneumonia.")
    assert "No Finding" not in extract_findings("Mild cardiomegaly.")


def test_positive_beats_uncertain_beats_negative_across_sentences():
    text = "No effusion on the left. Possible effusion on the right. Small right effusion."
    mentions = [m.status for m in find_mentions(text) if m.finding == "Pleural Effusion"]
    assert mentions == [NEGATIVE, UNCERTAIN, POSITIVE]
    assert extract_findings(text)["Pleural Effusion"] == POSITIVE


def test_label_vector_policies():
    statuses = {"Edema": UNCERTAIN, "Cardiomegaly": POSITIVE, "Pneumothorax": NEGATIVE}
    classes = ["Cardiomegaly", "Edema", "Pneumothorax", "Fracture"]
    assert label_vector(statuses, classes) == [1.0, 1.0, 0.0, 0.0]
    assert label_vector(statuses, classes, uncertain="negative") == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        label_vector(statuses, classes, uncertain="maybe")


def test_vocabulary_covers_chexpert():
    assert set(CHEXPERT_OBSERVATIONS) <= set(FINDING_NAMES)


def test_iu_mesh_mapping():
    assert iu_mesh_findings("normal") == {"No Finding"}
    assert iu_mesh_findings("No Indexing") is None
    assert iu_mesh_findings("Cardiomegaly/borderline;Pulmonary Artery/enlarged") == {"Cardiomegaly"}
    # qualifiers must be present: tortuous aorta yes, a merely "mild" aorta no
    assert iu_mesh_findings("Aorta/tortuous/mild") == {"Tortuous Aorta"}
    assert iu_mesh_findings("Aorta/mild") == set()
    assert iu_mesh_findings("Calcinosis/aorta;Calcified Granuloma/lung") == {
        "Calcification", "Aortic Atherosclerosis", "Granuloma"}


def _prf(rows, name):
    tp = fp = fn = 0
    for row in rows:
        truth = iu_mesh_findings(row["MeSH"])
        if truth is None:
            continue
        predicted = extract_findings(" ".join(filter(None, (row["findings"], row["impression"])))).get(name)
        hit = predicted in (POSITIVE, UNCERTAIN)
        tp += hit and name in truth
        fp += hit and name not in truth
        fn += (not hit) and name in truth
    return tp / (tp + fp), tp / (tp + fn)


def test_agrees_with_the_iu_radiologists_mesh_index(shared_data):
    """On the real IU reports the extraction must agree with the radiologists' own index for the
    frequent findings (the full table is benchmarks/report_extraction.py)."""
    path = shared_data / "medical" / "iu_xray_reports" / "indiana_reports.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:1500]
    for name in ("Cardiomegaly", "Lung Opacity", "Atelectasis", "Pleural Effusion", "Granuloma", "No Finding"):
        precision, recall = _prf(rows, name)
        assert precision > 0.8 and recall > 0.8, (name, precision, recall)
