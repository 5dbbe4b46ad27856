"""Report finding extraction scored against the IU X-ray MeSH index (3,851 real reports).

The IU radiologists indexed each report with MeSH terms; `iu_mesh_findings` maps those to our
finding names. We extract findings from the FINDINGS + IMPRESSION text and print precision,
recall and F1 per finding (a finding counts as predicted when positive, and, in the first
columns, also when uncertain). Reports indexed "No Indexing" are left out.

    python benchmarks/report_extraction.py [--reports PATH] [--markdown]
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from facetvlp.domains.medical.reports import (
    FINDING_NAMES, POSITIVE, UNCERTAIN, extract_findings, iu_mesh_findings,
)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "medical" / "iu_xray_reports" / "indiana_reports.csv"


def score(rows: list[dict[str, str]]):
    counts = {mode: {name: Counter() for name in FINDING_NAMES} for mode in ("pos+unc", "pos")}
    for row in rows:
        truth = iu_mesh_findings(row["MeSH"])
        if truth is None:
            continue
        statuses = extract_findings(" ".join(filter(None, (row["findings"], row["impression"]))))
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


if __name__ == "__main__":
    main()
