"""The report negation/uncertainty rules facetvlp used before issue 10, kept only so that
benchmarks/report_extraction.py can score old against new. NegEx-like regular expressions with an
unbounded clause scope and no pseudo-negations; written while looking at the IU reports that the
benchmark scores them on. Not used by the library."""

from __future__ import annotations

import re

from facetvlp.domains.medical.reports import NEGATIVE, POSITIVE, UNCERTAIN

_PRE_UNCERTAIN = re.compile(
    r"\?|\b(?:may|might|possibl[ey]|probabl[ey]|likely|suspect\w*|suspicious\s+(?:for|of)|concern\w*\s+(?:for|of)|"
    r"question\w*|cannot\s+(?:be\s+)?(?:exclude|rule\s+out|ruled\s+out)|can\s*'?\s*not\s+(?:exclude|rule\s+out)|"
    r"can't\s+(?:exclude|rule\s+out)|not\s+(?:be\s+)?excluded|differential|versus|vs\.?|suggest\w*|"
    r"could\s+(?:be|represent|reflect|indicate)|would\s+(?:be|represent)|consider(?:ed|ing)?|equivocal|indeterminate|"
    r"uncertain|(?:can|could)\s+not\s+(?:be\s+)?(?:exclude|excluded|ruled\s+out)|rule\s+out|r/o|"
    r"(?:compatible|consistent)\s+with\s+(?:early|developing)|worrisome\s+for|presum\w*)\b",
    re.IGNORECASE,
)
_POST_UNCERTAIN = re.compile(
    r"^[^.;]{0,40}?\b(?:(?:is|are|be)\s+(?:not\s+)?(?:excluded|ruled\s+out)|cannot\s+be\s+(?:excluded|ruled\s+out)|"
    r"(?:is|are)\s+(?:possible|suspected|questioned|likely|not\s+entirely\s+excluded)|not\s+excluded|"
    r"versus|vs\.?)",
    re.IGNORECASE,
)
_PRE_NEGATION = re.compile(
    r"\b(?:no|not|without|negative\s+for|free\s+of|absence\s+of|absent|resolution\s+of|resolved|"
    r"clear\s+of|rather\s+than|never|nor|neither|lack\s+of|no\s+(?:evidence|signs?|findings?)\s+(?:of|to\s+suggest))\b",
    re.IGNORECASE,
)
_POST_NEGATION = re.compile(
    r"^[^.;]{0,40}?\b(?:(?:is|are|was|were|has\s+been|have\s+been)\s+(?:not\s+(?:seen|identified|present|visualized|"
    r"demonstrated|appreciated|evident|noted)|absent|resolved|removed)|(?:has|have)\s+(?:resolved|cleared)|"
    r"no\s+longer\s+(?:seen|present|visualized|evident|identified)|resolved|ruled\s+out|negative|removed)\b",
    re.IGNORECASE,
)
# "no opacity to suggest pneumonia": the suggestion itself is negated.
_NEGATED_SUGGESTION = re.compile(r"\b(?:no|without|negative\s+for)\b.*\b(?:to\s+suggest|suggestive\s+of|to\s+indicate)\b",
                                 re.IGNORECASE)
# A trigger's scope stops at these (NegEx "termination terms").
_TERMINATION = re.compile(
    r"\b(?:but|however|although|though|except|aside\s+from|apart\s+from|other\s+than|which|whereas|"
    r"there\s+is|there\s+are|with\s+(?:a|an|the|some|mild|small|minimal|increased|interval)|that)\b|;",
    re.IGNORECASE,
)


def _scope_before(sentence: str, start: int) -> str:
    """The clause before a mention that a pre-trigger may reach (after the last termination term)."""
    before = sentence[:start]
    last = None
    for last in _TERMINATION.finditer(before):
        pass
    return before[last.end():] if last else before


def _scope_after(sentence: str, end: int) -> str:
    after = sentence[end:]
    stop = _TERMINATION.search(after)
    return after[: stop.start()] if stop else after


def _last_end(regex: re.Pattern, text: str) -> int:
    end = -1
    for match in regex.finditer(text):
        end = match.end()
    return end


def legacy_status(sentence: str, start: int, end: int) -> int:
    before, after = _scope_before(sentence, start), _scope_after(sentence, end)
    if _NEGATED_SUGGESTION.search(before):
        return NEGATIVE
    # The trigger nearest the mention wins ("possible effusion, without pneumothorax"); comparing
    # end positions lets "can not exclude" (uncertain) beat the "not" inside it.
    uncertain_end, negation_end = _last_end(_PRE_UNCERTAIN, before), _last_end(_PRE_NEGATION, before)
    if uncertain_end >= 0 or negation_end >= 0:
        return UNCERTAIN if uncertain_end > negation_end else NEGATIVE
    if _POST_UNCERTAIN.search(after):
        return UNCERTAIN
    if _POST_NEGATION.search(after):
        return NEGATIVE
    return POSITIVE
