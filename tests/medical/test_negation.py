"""Report negation: the cases issue 10 found wrong, the scope bound, and agreement with negspacy's
own NegEx component on every trigger of the termset both use."""

from __future__ import annotations

import pytest

from facetvlp.domains.medical.negation import MAX_SCOPE, NEGATIVE, POSITIVE, UNCERTAIN, mention_status
from facetvlp.domains.medical.reports import extract_findings


@pytest.mark.parametrize("sentence, finding, status", [
    # pseudo-negation: "no change" negates nothing
    ("No change in the moderate cardiomegaly.", "Cardiomegaly", POSITIVE),
    ("No interval change in the small left pleural effusion.", "Pleural Effusion", POSITIVE),
    # the scope of "no" ends before a finding the sentence goes on to affirm
    ("No acute cardiopulmonary process, stable cardiomegaly.", "Cardiomegaly", POSITIVE),
    # hedges after the mention
    ("Pneumonia is less likely.", "Pneumonia", UNCERTAIN),
    ("Pleural effusion cannot be excluded.", "Pleural Effusion", UNCERTAIN),
    # negation after the mention
    ("Pneumothorax is not seen.", "Pneumothorax", NEGATIVE),
    # a negated list
    ("No focal air space consolidation, pneumothorax, pleural effusion, or pulmonary edema.", "Edema", NEGATIVE),
    # a negated hedge negates
    ("No focal opacity to suggest pneumonia.", "Pneumonia", NEGATIVE),
    # the nearest trigger decides
    ("Possible small left effusion, without pneumothorax.", "Pleural Effusion", UNCERTAIN),
    ("Possible small left effusion, without pneumothorax.", "Pneumothorax", NEGATIVE),
    ("There is no evidence of pneumonia but there is a small effusion.", "Pleural Effusion", POSITIVE),
])
def test_statuses_a_reader_would_give(sentence, finding, status):
    assert extract_findings(sentence)[finding] == status


def test_a_trigger_reaches_max_scope_words_and_no_further():
    near = "No " + " ".join(["visible"] * MAX_SCOPE) + " effusion."
    far = "No " + " ".join(["visible"] * (MAX_SCOPE + 1)) + " effusion."
    assert mention_status(near, near.index("effusion"), len(near) - 1) == NEGATIVE
    assert mention_status(far, far.index("effusion"), len(far) - 1) == POSITIVE


# where we decide otherwise than negspacy, on purpose
HEDGES_NOT_NEGATIONS = {"versus", "rule out", "r/o"}  # ConText's POSSIBLE_EXISTENCE, not negation
# negspacy lets its termination term "cause of" cut its own trigger "no cause of" in half
NEGSPACY_OVERLAP = {"no cause of"}


def _negspacy():
    import negspacy.negation  # noqa: F401  (registers the "negex" factory)
    import spacy
    from negspacy.termsets import termset

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("negex", config={"neg_termset": termset("en_clinical").get_patterns()})
    return nlp, termset("en_clinical").get_patterns()


def test_every_negspacy_trigger_negates_as_negspacy_negex_does():
    nlp, terms = _negspacy()
    checked = 0
    for kind, template in (("preceding_negations", "{} pleural effusion."),
                           ("following_negations", "Pleural effusion {}."),
                           ("pseudo_negations", "{} pleural effusion.")):
        for term in terms[kind]:
            if term in HEDGES_NOT_NEGATIONS | NEGSPACY_OVERLAP:
                continue
            sentence = template.format(term)
            start = sentence.lower().index("pleural effusion")
            doc = nlp.make_doc(sentence)
            doc.ents = [doc.char_span(start, start + 16, label="FINDING")]
            for _, component in nlp.pipeline:
                doc = component(doc)
            theirs = doc.ents[0]._.negex
            ours = mention_status(sentence, start, start + 16) == NEGATIVE
            assert ours == theirs, (kind, term)
            checked += 1
    assert checked >= 90
    for term in HEDGES_NOT_NEGATIONS:
        sentence = f"{term} pleural effusion."
        assert mention_status(sentence, len(term) + 1, len(term) + 17) == UNCERTAIN
