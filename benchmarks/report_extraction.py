"""Report finding extraction scored against the IU X-ray MeSH index (3,851 real reports).

The IU radiologists indexed each report with MeSH terms; `iu_mesh_findings` maps those to our
finding names. We extract findings from the FINDINGS + IMPRESSION text and print precision,
recall and F1 per finding (a finding counts as predicted when positive, and, in the first
columns, also when uncertain). Reports indexed "No Indexing" are left out.

Both the negation rules in use (facetvlp.domains.medical.negation: ConText-style over negspacy's
termset) and the rules they replaced (benchmarks/legacy_negation.py, tuned on these same IU
reports) are scored, and both are also scored on an independent set neither was fitted to: the
NegEx test sentences (Chapman et al.; ../shared/data/medical/negex_sentences, Apache-2.0, the
development half of 1,188 physician-annotated sentences): given the condition, negated or not.

    python benchmarks/report_extraction.py [--reports PATH] [--negex PATH] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from facetvlp.domains.medical.negation import NEGATIVE, mention_status
from facetvlp.domains.medical.reports import (
    FINDING_NAMES, POSITIVE, UNCERTAIN, extract_findings, iu_mesh_findings,
)
from legacy_negation import legacy_status

RULES = {"legacy (regex, tuned on IU)": legacy_status, "ConText over negspacy (in use)": mention_status}

SHARED_MEDICAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "medical"
DEFAULT = SHARED_MEDICAL / "iu_xray_reports" / "indiana_reports.csv"
NEGEX = SHARED_MEDICAL / "negex_sentences" / "annotations.tsv"


def score_negex(path: Path, status) -> tuple[Counter, int]:
    """Negated-vs-affirmed counts on the NegEx sentences (the condition is located in its
    sentence; rows whose condition text is not in the sentence are counted apart)."""
    counts, missing = Counter(), 0
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    for row in rows:
        condition, sentence, truth = row[1].strip(), row[2], row[3].strip().lower()
        at = sentence.lower().find(condition.lower())
        if not condition or at < 0:
            missing += 1
            continue
        p, t = status(sentence, at, at + len(condition)) == NEGATIVE, truth == "negated"
        counts["tp" if p and t else "fp" if p else "fn" if t else "tn"] += 1
    return counts, missing


def score(rows: list[dict[str, str]], status=mention_status):
    counts = {mode: {name: Counter() for name in FINDING_NAMES} for mode in ("pos+unc", "pos")}
    for row in rows:
        truth = iu_mesh_findings(row["MeSH"])
        if truth is None:
            continue
        statuses = extract_findings(" ".join(filter(None, (row["findings"], row["impression"]))), status=status)
        for mode, hot in (("pos+unc", {POSITIVE, UNCERTAIN}), ("pos", {POSITIVE})):
            predicted = {name for name, status in statuses.items() if status in hot}
            for name in FINDING_NAMES:
                p, t = name in predicted, name in truth
                counts[mode][name]["tp" if p and t else "fp" if p else "fn" if t else "tn"] += 1
    return counts


def prf(c: Counter) -> tuple[float, float, float]:
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=DEFAULT)
    parser.add_argument("--negex", type=Path, default=NEGEX)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    with open(args.reports, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    start = time.perf_counter()
    counts = score(rows)
    seconds = time.perf_counter() - start
    indexed = sum(1 for r in rows if iu_mesh_findings(r["MeSH"]) is not None)
    print(f"{len(rows)} reports, {indexed} MeSH-indexed, scored in {seconds:.2f} s "
          f"({indexed / seconds:.0f} reports/s)")
    if args.markdown:
        print("| finding | support | P (pos+unc) | R (pos+unc) | F1 (pos+unc) | P (pos) | R (pos) | F1 (pos) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
    else:
        print(f"{'finding':28s} {'support':>7s} {'P':>6s} {'R':>6s} {'F1':>6s}   {'P pos':>6s} {'R pos':>6s} {'F1 pos':>6s}")
    micro = {mode: Counter() for mode in counts}
    for name in FINDING_NAMES:
        support = counts["pos+unc"][name]["tp"] + counts["pos+unc"][name]["fn"]
        both = prf(counts["pos+unc"][name]) + prf(counts["pos"][name])
        for mode in counts:
            micro[mode].update(counts[mode][name])
        if args.markdown:
            print(f"| {name} | {support} | " + " | ".join(f"{v:.3f}" for v in both) + " |")
        else:
            print(f"{name:28s} {support:7d} " + " ".join(f"{v:6.3f}" for v in both[:3]) + "   "
                  + " ".join(f"{v:6.3f}" for v in both[3:]))
    both = prf(micro["pos+unc"]) + prf(micro["pos"])
    if args.markdown:
        print("| **micro average** | | " + " | ".join(f"{v:.3f}" for v in both) + " |")
    else:
        print(f"{'micro average':28s} {'':7s} " + " ".join(f"{v:6.3f}" for v in both[:3]) + "   "
              + " ".join(f"{v:6.3f}" for v in both[3:]))
    compare(rows, args.negex)


def compare(rows: list[dict[str, str]], negex: Path) -> None:
    """Old rules against new: IU micro P/R/F1 and NegEx negated P/R/F1."""
    print("\n| rules | IU micro P/R/F1 (pos+unc) | IU micro P/R/F1 (pos) | NegEx negated P/R/F1 | NegEx accuracy |")
    print("|---|---|---|---|---|")
    for name, status in RULES.items():
        counts = score(rows, status)
        micro = {mode: sum((counts[mode][n] for n in FINDING_NAMES), Counter()) for mode in counts}
        cells = ["/".join(f"{v:.3f}" for v in prf(micro[mode])) for mode in ("pos+unc", "pos")]
        if negex.is_file():
            c, missing = score_negex(negex, status)
            accuracy = (c["tp"] + c["tn"]) / sum(c.values())
            cells += ["/".join(f"{v:.3f}" for v in prf(c)), f"{accuracy:.3f} (n={sum(c.values())}, {missing} not located)"]
        else:
            cells += ["(no NegEx set)", ""]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
