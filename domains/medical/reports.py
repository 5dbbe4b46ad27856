"""Chest X-ray report parsing: sections, sentences and negation/uncertainty-aware findings.

The vocabulary is the 14 CheXpert observations plus the findings that the Indiana University
(IU X-ray / OpenI) radiologists index most often with MeSH terms. Each finding carries

* ``patterns``: regular expressions for the ways reports mention it, and
* ``iu_mesh``: the IU MeSH headings (optionally ``heading/qualifier``) that mean the same thing,
  used to score extraction against the IU ``MeSH`` column and to label IU images.

Whether a mention is affirmed, negated or hedged is decided by :mod:`.negation` (ConText-style,
over negspacy's maintained clinical termset, with pseudo-negations, triggers after the mention,
hedges and a bounded scope).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from .negation import NEGATIVE, POSITIVE, UNCERTAIN, mention_status


@dataclass(frozen=True)
class Finding:
    name: str
    patterns: tuple[str, ...]
    iu_mesh: tuple[str, ...] = ()
    chexpert: bool = False
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        joined = "|".join(f"(?:{p})" for p in self.patterns)
        object.__setattr__(self, "regex", re.compile(rf"\b(?:{joined})", re.IGNORECASE))


_SIDE = r"(?:(?:left|right|bilateral|both|small|large|moderate|mild|trace|tiny|minimal)\s+)*"
_DEGREE = r"(?:(?:mildly|moderately|markedly|severely|slightly|minimally|again|still|now|top normal|borderline)\s+)*"

FINDINGS: tuple[Finding, ...] = (
    # --- the 14 CheXpert observations ("No Finding" is derived, see extract_findings) ---
    Finding("Enlarged Cardiomediastinum", (
        r"(?:widen\w*|enlarge\w*|prominen\w*)\s+(?:of\s+the\s+)?(?:superior\s+)?(?:cardio)?mediastin\w*",
        r"(?:cardio)?mediastin\w*\s+(?:silhouette\s+|contours?\s+)?(?:is\s+|are\s+|appears\s+)?" + _DEGREE + r"(?:widen\w*|enlarge\w*|prominent)",
    ), iu_mesh=("Mediastinum/enlarged", "Mediastinum/prominent", "Mediastinum/widened"), chexpert=True),
    Finding("Cardiomegaly", (
        r"cardiomegaly",
        r"cardiac\s+enlargement",
        r"(?:enlarge\w*|prominent)\s+(?:cardiac|heart)(?:\s+(?:silhouette|size|shadow|contour))?",
        r"(?:heart|cardiac\s+silhouette|cardiac\s+shadow|heart\s+size|cardiac\s+size|cardiac\s+contour)\s+"
        r"(?:is\s+|are\s+|appears\s+|remains\s+|appear\s+)?" + _DEGREE + r"(?:enlarged|increased|large)",
    ), iu_mesh=("Cardiomegaly", "Cardiac Shadow/enlarged", "Heart/enlarged"), chexpert=True),
    Finding("Lung Opacity", (
        r"opacit(?:y|ies)", r"opacification", r"densit(?:y|ies)", r"infiltrat\w*",
        r"air\s*-?\s*space\s+(?:disease|process)", r"haz(?:y|iness)",
    ), iu_mesh=("Opacity", "Density", "Infiltrate", "Airspace Disease"), chexpert=True),
    Finding("Lung Lesion", (
        r"nodul\w*", r"mass(?:es)?\b", r"(?:lung|pulmonary)\s+lesions?", r"neoplasm\w*",
        r"tumou?rs?", r"carcinoma", r"malignan\w*", r"metasta\w*",
    ), iu_mesh=("Nodule", "Mass", "Lung Neoplasms"), chexpert=True),
    Finding("Edema", (
        r"edema", r"oedema", r"(?:vascular|pulmonary|venous)\s+congestion", r"congestive\s+heart\s+failure",
        r"chf\b", r"heart\s+failure", r"fluid\s+overload",
    ), iu_mesh=("Pulmonary Edema", "Pulmonary Congestion", "Edema", "Heart Failure"), chexpert=True),
    Finding("Consolidation", (r"consolidat\w*",), iu_mesh=("Consolidation",), chexpert=True),
    Finding("Pneumonia", (r"pneumoni\w*", r"infectious\s+process", r"bronchopneumonia"),
            iu_mesh=("Pneumonia",), chexpert=True),
    Finding("Atelectasis", (r"atelecta\w*", r"(?:lobar\s+|segmental\s+)?collapse"),
            iu_mesh=("Pulmonary Atelectasis",), chexpert=True),
    Finding("Pneumothorax", (r"pneumothora(?:x|ces)", r"ptx\b"), iu_mesh=("Pneumothorax",), chexpert=True),
    Finding("Pleural Effusion", (
        r"(?<!pericardial\s)effusions?", r"pleural\s+fluid", r"hydrothorax",
        r"blunt\w*\s+(?:of\s+(?:the\s+)?)?" + _SIDE + r"costophrenic",
        r"costophrenic\s+(?:angles?|sulc\w*|recess\w*)\s+(?:is\s+|are\s+)?" + _DEGREE + r"blunt\w*",
    ), iu_mesh=("Pleural Effusion", "Costophrenic Angle/blunted"), chexpert=True),
    Finding("Pleural Other", (
        r"pleural\s+(?:thickening|plaques?|scar\w*|calcification\w*)", r"thicken\w*\s+of\s+(?:the\s+)?pleura\w*",
        r"fibrothorax", r"pleural\s+based\s+(?:thickening|opacit\w*)",
    ), iu_mesh=("Thickening/pleura", "Cicatrix/pleura"), chexpert=True),
    Finding("Fracture", (r"fractur\w*", r"fx\b"), iu_mesh=("Fractures, Bone",), chexpert=True),
    Finding("Support Devices", (
        r"catheters?", r"(?:picc|central|venous|arterial|midline|swan\s*-?\s*ganz|dialysis)\s+(?:venous\s+)?lines?",
        r"(?:endotracheal|nasogastric|orogastric|feeding|chest|tracheostomy|enteric|ng|et)\s+tubes?",
        r"pacemaker\w*", r"pacer\w*", r"defibrillator\w*", r"aicd\b", r"port\s*-?\s*a\s*-?\s*cath",
        r"stents?", r"sternotomy\s+wires?", r"(?:sternal|median)\s+(?:wires?|sutures?)", r"surgical\s+clips?",
        r"prosthe(?:sis|tic)\w*", r"valve\s+replacement", r"orthopedic\s+hardware", r"(?:fixation|fusion)\s+hardware",
        r"drains?\b", r"leads?\b(?=.*(?:pacemaker|pacer|defibrillator|cardiac|right\s+ventric|atri))",
        r"(?:implanted|medical)\s+devices?", r"spinal\s+(?:fusion\s+)?(?:rods?|hardware)",
    ), iu_mesh=("Catheters, Indwelling", "Surgical Instruments", "Implanted Medical Device", "Tube, Inserted",
                "Medical Device", "Stents", "Sutures", "Pacemaker, Artificial", "Prostheses and Implants"),
       chexpert=True),
    # --- frequent IU X-ray MeSH findings beyond CheXpert ---
    Finding("Granuloma", (r"granulom\w*",), iu_mesh=("Calcified Granuloma", "Granuloma", "Granulomatous Disease")),
    Finding("Calcification", (r"calcif\w*\b(?!\s+granulom)", r"calcinosis"), iu_mesh=("Calcinosis",)),
    Finding("Scarring", (r"scar\w*", r"cicatri\w*", r"fibrotic\s+(?:changes?|strand\w*|scar\w*)"), iu_mesh=("Cicatrix",)),
    Finding("Emphysema", (
        r"(?<!subcutaneous\s)(?<!soft\s tissue\s)emphysem\w*", r"copd\b", r"chronic\s+obstructive", r"bullae",
        r"bullous", r"bulla\b",
    ), iu_mesh=("Emphysema", "Pulmonary Emphysema", "Pulmonary Disease, Chronic Obstructive", "Blister")),
    Finding("Hyperinflation", (
        r"hyperinflat\w*", r"hyperexpan\w*", r"hyperaerat\w*", r"over\s*-?\s*inflat\w*", r"hyperlucen\w*",
        r"flatten\w*\s+(?:of\s+(?:the\s+)?)?" + _SIDE + r"(?:hemi)?diaphragm\w*",
        r"(?:hemi)?diaphragms?\s+(?:is\s+|are\s+|appears?\s+)?" + _DEGREE + r"flatten\w*",
        r"(?:increased|large|high)\s+lung\s+volumes?",
    ), iu_mesh=("Lung/hyperdistention", "Diaphragm/flattened", "Lung, Hyperlucent")),
    Finding("Hypoinflation", (
        r"low\s+(?:lung\s+)?(?:volumes?|inspiratory\s+volumes?)", r"hypoinflat\w*", r"hypoventilat\w*",
        r"(?:shallow|poor|suboptimal|low)\s+inspiration\w*",
        r"lung\s+volumes\s+(?:are\s+)?" + _DEGREE + r"(?:low|decreased|diminished|reduced)",
    ), iu_mesh=("Lung/hypoinflation",)),
    Finding("Degenerative Spine", (
        r"degenerat\w*", r"spondylo\w*", r"osteophyt\w*", r"(?:djd|dish)\b", r"arthriti\w*", r"arthropath\w*",
    ), iu_mesh=("Thoracic Vertebrae/degenerative", "Spine/degenerative", "Lumbar Vertebrae/degenerative",
                "Spondylosis", "Osteophyte", "Arthritis", "Hyperostosis, Diffuse Idiopathic Skeletal")),
    Finding("Scoliosis", (r"scolio\w*", r"(?:dextro|levo)(?:convex|curvature|scolio)\w*", r"spinal\s+curvature"),
            iu_mesh=("Scoliosis",)),
    Finding("Kyphosis", (r"kypho\w*",), iu_mesh=("Kyphosis",)),
    Finding("Tortuous Aorta", (
        r"tortu\w*", r"(?:ectatic|ectasia|unfold\w*)\s+(?:of\s+(?:the\s+)?)?(?:thoracic\s+)?aort\w*",
        r"aort\w*\s+(?:arch\s+)?(?:is\s+|are\s+|appears\s+)?" + _DEGREE + r"(?:ectatic|unfolded)",
    ), iu_mesh=("Aorta/tortuous", "Aorta, Thoracic/tortuous")),
    Finding("Aortic Atherosclerosis", (
        r"atheroscl\w*", r"atheromatous", r"aort\w*\s+(?:arch\s+|knob\s+|wall\s+)?(?:atherosclerotic\s+)?calcif\w*",
        r"calcif\w*\s+(?:of|in|within)\s+(?:the\s+)?(?:thoracic\s+)?aort\w*",
    ), iu_mesh=("Atherosclerosis", "Calcinosis/aorta", "Calcinosis/aorta, thoracic")),
    Finding("Hiatal Hernia", (r"hiat(?:al|us)\s+hernia", r"hernia\w*"), iu_mesh=("Hernia, Hiatal",)),
    Finding("Interstitial Lung Disease", (
        r"fibros\w*", r"(?<!pleural\s)fibrotic", r"interstitial\s+(?:lung\s+)?(?:disease|markings?|opacit\w*|pattern|"
        r"prominence|changes?|thickening|process)", r"reticul\w*", r"honeycomb\w*",
    ), iu_mesh=("Pulmonary Fibrosis", "Lung Diseases, Interstitial", "Markings/interstitial", "Opacity/interstitial",
                "Opacity/reticular")),
    Finding("Elevated Diaphragm", (
        r"elevat\w*\s+(?:of\s+(?:the\s+)?)?" + _SIDE + r"(?:hemi)?diaphragm\w*",
        r"(?:hemi)?diaphragms?\s+(?:is\s+|are\s+|appears?\s+|remains\s+)?" + _DEGREE + r"elevat\w*",
        r"eventration",
    ), iu_mesh=("Diaphragm/elevated", "Diaphragmatic Eventration")),
    Finding("Tuberculosis", (r"tuberculo\w*", r"tb\b", r"mycobacter\w*"), iu_mesh=("Tuberculosis",)),
)

FINDINGS_BY_NAME = {f.name: f for f in FINDINGS}
CHEXPERT_OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
)
#: every label this module can emit, in a stable order
FINDING_NAMES = ("No Finding",) + tuple(f.name for f in FINDINGS)

# --- sections --------------------------------------------------------------------------------

SECTION_ALIASES = {
    "findings": ("FINDINGS AND IMPRESSION", "FINDINGS", "FINDING", "REPORT"),
    "impression": ("IMPRESSIONS", "IMPRESSION", "CONCLUSIONS", "CONCLUSION", "SUMMARY", "OPINION"),
    "indication": ("CLINICAL INDICATION", "CLINICAL HISTORY", "CLINICAL INFORMATION", "REASON FOR EXAMINATION",
                   "REASON FOR EXAM", "REASON FOR STUDY", "INDICATIONS", "INDICATION", "HISTORY"),
    "comparison": ("COMPARISONS", "COMPARISON", "PRIOR STUDIES", "PRIORS"),
    "technique": ("TECHNIQUE", "EXAMINATION", "PROCEDURE", "EXAM"),
}
_HEADER_TO_SECTION = {alias: name for name, aliases in SECTION_ALIASES.items() for alias in aliases}
_HEADER_RE = re.compile(
    r"(?:^|(?<=[\s.]))(" + "|".join(sorted(map(re.escape, _HEADER_TO_SECTION), key=len, reverse=True)) + r")\s*:",
    re.IGNORECASE,
)


def split_sections(text: str) -> dict[str, str]:
    """``{"findings": ..., "impression": ..., ...}`` from a free-text report.

    Text before the first known header is kept as ``"preamble"`` (MIMIC reports start with
    "FINAL REPORT"); a section that appears twice is joined.
    """
    sections: dict[str, list[str]] = {}
    matches = list(_HEADER_RE.finditer(text))
    starts = [m.start() for m in matches] + [len(text)]
    head = text[: starts[0]].strip()
    if head:
        sections.setdefault("preamble", []).append(head)
    for match, end in zip(matches, starts[1:]):
        body = " ".join(text[match.end():end].split())
        if body:
            sections.setdefault(_HEADER_TO_SECTION[match.group(1).upper()], []).append(body)
    return {name: " ".join(parts) for name, parts in sections.items()}


# --- sentences -------------------------------------------------------------------------------

# A period ends a sentence when followed by space + capital/digit, or glued to a capital word
# ("apex.There"); enumerations ("2. Probably ...") are stripped from the sentence start.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])|(?<=[a-z]\.)(?=[A-Z][a-z])|\n\s*\n|(?<=[;])\s*\n")
_ENUMERATION = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s*")


def split_sentences(text: str) -> list[str]:
    out = []
    for piece in _SENTENCE_END.split(text or ""):
        piece = _ENUMERATION.sub("", " ".join(piece.split()))
        if re.search(r"[A-Za-z]{2}", piece):
            out.append(piece)
    return out


@dataclass(frozen=True)
class Mention:
    finding: str
    status: int  # POSITIVE, NEGATIVE or UNCERTAIN
    sentence: int
    start: int
    end: int
    text: str


def find_mentions(text: str, vocabulary: Iterable[Finding] = FINDINGS, status=mention_status) -> list[Mention]:
    """Every mention of a vocabulary finding, sentence by sentence, with its status
    (``status(sentence, start, end)``, :func:`.negation.mention_status` unless given)."""
    mentions = []
    vocabulary = tuple(vocabulary)
    for index, sentence in enumerate(split_sentences(text)):
        for finding in vocabulary:
            for match in finding.regex.finditer(sentence):
                start, end = match.span()
                mentions.append(Mention(finding.name, status(sentence, start, end), index, start, end,
                                        match.group(0)))
    return mentions


def extract_findings(text: str, vocabulary: Iterable[Finding] = FINDINGS, status=mention_status) -> dict[str, int]:
    """``{finding: POSITIVE | NEGATIVE | UNCERTAIN}`` for every finding the text mentions.

    Several mentions of one finding combine as positive > uncertain > negative (the CheXpert
    labeler's rule). "No Finding" is POSITIVE when no finding other than support devices is
    positive or uncertain, as in CheXpert.
    """
    rank = {POSITIVE: 2, UNCERTAIN: 1, NEGATIVE: 0}
    result: dict[str, int] = {}
    for mention in find_mentions(text, vocabulary, status):
        old = result.get(mention.finding)
        if old is None or rank[mention.status] > rank[old]:
            result[mention.finding] = mention.status
    if not any(status in (POSITIVE, UNCERTAIN) for name, status in result.items() if name != "Support Devices"):
        result["No Finding"] = POSITIVE
    return result


def report_body(report: str | dict[str, str], parts: tuple[str, ...] = ("findings", "impression")) -> str:
    """The parts of a report that describe the image (not the indication or comparison)."""
    sections = split_sections(report) if isinstance(report, str) else report
    if isinstance(report, str) and not any(name in sections for name in parts):
        return report  # a report with no headers is all body
    return " ".join(sections[name] for name in parts if sections.get(name))


def label_vector(statuses: dict[str, int], classes: Iterable[str], uncertain: str = "positive") -> list[float]:
    """Multi-hot targets over ``classes``; ``uncertain`` = "positive" | "negative" maps U to 1 or 0."""
    if uncertain not in ("positive", "negative"):
        raise ValueError(f"uncertain must be 'positive' or 'negative', got {uncertain!r}")
    hot = {POSITIVE} | ({UNCERTAIN} if uncertain == "positive" else set())
    return [1.0 if statuses.get(name) in hot else 0.0 for name in classes]


# --- the IU X-ray MeSH column ----------------------------------------------------------------

def _mesh_matches(term: str, spec: str) -> bool:
    """``"Cardiomegaly/mild"`` matches spec ``"Cardiomegaly"``; ``"Aorta/tortuous/mild"`` matches
    ``"Aorta/tortuous"`` (heading equal, every spec qualifier present)."""
    heading, *qualifiers = [p.strip().lower() for p in term.split("/")]
    spec_heading, *spec_qualifiers = [p.strip().lower() for p in spec.split("/")]
    return heading == spec_heading and all(q in qualifiers for q in spec_qualifiers)


def iu_mesh_findings(mesh: str) -> set[str] | None:
    """Our finding names for an IU ``MeSH`` cell (terms joined by ";"), or None when the report
    was not indexed ("No Indexing"). "normal" becomes {"No Finding"}."""
    terms = [t.strip() for t in mesh.split(";") if t.strip()]
    if not terms or any(t.lower() == "no indexing" for t in terms):
        return None
    found = set()
    for term in terms:
        if term.lower() == "normal":
            found.add("No Finding")
        for finding in FINDINGS:
            if any(_mesh_matches(term, spec) for spec in finding.iu_mesh):
                found.add(finding.name)
    return found
