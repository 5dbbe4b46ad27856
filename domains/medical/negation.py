"""Is a finding mentioned in a sentence affirmed, negated or hedged? A ConText-style decision
(Harkema et al., 2009) over negspacy's maintained clinical termset.

* Negation triggers, pseudo-negations and termination terms are negspacy's ``en_clinical``
  termset (NegEx's published lists as maintained in that package): ``no``, ``without``,
  ``negative for`` before a mention; ``unlikely``, ``ruled out`` after it; pseudo-negations such
  as ``no change`` or ``no interval change`` that contain a trigger but negate nothing; and
  terms (``but``, ``however``, ``which`` ...) that end a trigger's scope.
* Hedges (uncertainty) are the radiology phrases in :data:`PRE_HEDGES` / :data:`POST_HEDGES`;
  at equal length a hedge wins over a negation (``rule out``, ``versus`` are hedges, as in
  ConText's POSSIBLE_EXISTENCE, not negations).
* Radiology adds ``clear of`` and ``resolution of`` before a mention
  (:data:`RADIOLOGY_PRE_NEGATIONS`), scope ends for the findings a sentence goes on to affirm after a negated one
  (:data:`RADIOLOGY_TERMINATION`: "No acute process, *stable* cardiomegaly.") and the ways its
  reports negate after a mention (:data:`RADIOLOGY_POST_NEGATIONS`: "effusion *is not seen*").
* A trigger reaches at most :data:`MAX_SCOPE` words, inside its sentence, and stops at the
  first termination term. The nearest trigger before the mention decides, else the nearest after
  it; a hedge that is itself negated ("no opacity *to suggest* pneumonia") negates.

The negation lists come from negspacy; the radiology additions are standard report phrases, two of
them ("clear of" and the scope of 12 words) added after reading the IU reports' errors, which
docs/benchmarks_medical.md records with the figures before and after. Nothing was fitted to the
NegEx test sentences, the independent check (benchmarks/report_extraction.py scores both).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

POSITIVE, NEGATIVE, UNCERTAIN = 1, 0, -1

PRE_HEDGES = (
    "?", "may", "might", "possible", "possibly", "probable", "probably", "likely", "suspect", "suspected",
    "suspicious for", "suspicious of", "concern for", "concerning for", "question of", "questionable",
    "cannot exclude", "cannot rule out", "can not exclude", "can not rule out", "can't exclude",
    "cannot be excluded", "differential", "versus", "vs", "suggest", "suggests", "suggesting",
    "to suggest", "suggestive of", "could be", "could represent", "could reflect", "may represent",
    "would be", "consider", "considered", "equivocal", "indeterminate", "uncertain", "rule out",
    "r/o", "worrisome for", "presumed", "presumably", "compatible with early", "consistent with early",
)
POST_HEDGES = (
    "is possible", "are possible", "is suspected", "are suspected", "is questioned", "is likely",
    "are likely", "less likely", "is less likely", "are less likely", "not excluded", "is not excluded",
    "not entirely excluded", "cannot be excluded", "can not be excluded", "cannot be ruled out",
    "not ruled out", "versus", "vs", "?",
)
#: triggers before a mention that radiology reports use and negspacy's list lacks
RADIOLOGY_PRE_NEGATIONS = ("clear of", "no evidence for", "resolution of", "resolved")
#: triggers after a mention that radiology reports use and negspacy's (discharge-summary) list lacks
RADIOLOGY_POST_NEGATIONS = (
    "is not", "are not", "not seen", "not identified", "not visualized", "not present", "not demonstrated",
    "not appreciated", "is absent", "are absent", "absent", "has resolved", "have resolved", "resolved",
    "no longer seen", "no longer present", "no longer visualized", "removed", "has been removed",
)
RADIOLOGY_TERMINATION = (
    ";", "stable", "unchanged", "persistent", "persists", "again", "redemonstrated", "there is",
    "there are", "with", "whereas", "other than", "that", "now",
)
#: the most words between a trigger and the mention it modifies. First set to 8; raised to 12
#: after the IU reports showed negated lists of four findings with modifiers ("No focal air space
#: consolidation, pneumothorax, pleural effusion, or pulmonary edema") running past 8 words.
MAX_SCOPE = 12

_TOKEN = re.compile(r"[a-z0-9]+(?:[/'][a-z0-9]+)*|[^\sa-z0-9]")


@dataclass(frozen=True)
class _Trigger:
    category: str  # pre_neg, post_neg, pre_hedge, post_hedge, pseudo, terminate
    start: int  # token index
    end: int


@functools.lru_cache(maxsize=1)
def _phrases() -> dict[tuple[str, ...], frozenset[str]]:
    """Token tuple -> its categories. A phrase may trigger both ways ("declined", "versus"); in
    one direction a hedge wins over a negation, and a pseudo-negation or a termination term is
    nothing else."""
    from negspacy.termsets import termset

    terms = termset("en_clinical").get_patterns()
    table: dict[tuple[str, ...], set[str]] = {}
    for category, phrases in (
        ("terminate", (*terms["termination"], *RADIOLOGY_TERMINATION)),
        ("pre_neg", (*terms["preceding_negations"], *RADIOLOGY_PRE_NEGATIONS)),
        ("post_neg", (*terms["following_negations"], *RADIOLOGY_POST_NEGATIONS)),
        ("pre_hedge", PRE_HEDGES),
        ("post_hedge", POST_HEDGES),
        ("pseudo", terms["pseudo_negations"]),
    ):
        for phrase in phrases:
            table.setdefault(tuple(_TOKEN.findall(phrase.lower())), set()).add(category)
    resolved = {}
    for key, categories in table.items():
        for exclusive in ("pseudo", "terminate"):
            if exclusive in categories:
                categories = {exclusive}
        if "pre_hedge" in categories:
            categories.discard("pre_neg")
        if "post_hedge" in categories:
            categories.discard("post_neg")
        resolved[key] = frozenset(categories)
    return resolved


def _tokens(sentence: str) -> tuple[list[str], list[tuple[int, int]]]:
    matches = list(_TOKEN.finditer(sentence.lower()))
    return [m.group(0) for m in matches], [m.span() for m in matches]


def _triggers(tokens: list[str]) -> list[_Trigger]:
    """Longest-match scan, one trigger per category of the phrase found."""
    table = _phrases()
    longest = max(len(k) for k in table)
    found, index = [], 0
    while index < len(tokens):
        for length in range(min(longest, len(tokens) - index), 0, -1):
            categories = table.get(tuple(tokens[index:index + length]))
            if categories:
                found += [_Trigger(category, index, index + length) for category in sorted(categories)]
                index += length
                break
        else:
            index += 1
    return found


def _words(tokens: list[str], start: int, end: int) -> int:
    return sum(1 for t in tokens[start:end] if t[0].isalnum())


def mention_status(sentence: str, start: int, end: int) -> int:
    """POSITIVE, NEGATIVE or UNCERTAIN for the mention at characters [start, end) of ``sentence``."""
    tokens, spans = _tokens(sentence)
    inside = [i for i, (a, b) in enumerate(spans) if a < end and b > start]
    if not inside:
        return POSITIVE
    first, last = inside[0], inside[-1] + 1
    triggers = [t for t in _triggers(tokens) if t.end <= first or t.start >= last]
    before = _reaching(triggers, tokens, first, forward=True)
    if before is not None:
        if before.category == "pre_hedge" and _reaching(triggers, tokens, before.start, forward=True, negation_only=True):
            return NEGATIVE  # "no opacity to suggest pneumonia"
        return NEGATIVE if before.category == "pre_neg" else UNCERTAIN
    after = _reaching(triggers, tokens, last, forward=False)
    if after is not None:
        return NEGATIVE if after.category == "post_neg" else UNCERTAIN
    return POSITIVE


def _reaching(triggers, tokens, position, *, forward: bool, negation_only: bool = False):
    """The nearest trigger whose scope reaches token ``position``: before it for forward
    triggers (pre_*), after it for backward ones (post_*); None if a termination term or more
    than MAX_SCOPE words lie between."""
    wanted = {"pre_neg"} if negation_only else ({"pre_neg", "pre_hedge"} if forward else {"post_neg", "post_hedge"})
    ordered = sorted((t for t in triggers if (t.end <= position if forward else t.start >= position)),
                     key=lambda t: -t.end if forward else t.start)
    for trigger in ordered:
        if trigger.category == "terminate":
            return None
        gap = _words(tokens, trigger.end, position) if forward else _words(tokens, position, trigger.start)
        if gap > MAX_SCOPE:
            return None
        if trigger.category in wanted:
            return trigger
    return None
