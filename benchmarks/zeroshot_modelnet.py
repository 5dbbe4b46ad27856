"""Zero-shot on held-out ModelNet10 classes: every recipe, several splits and seeds, one table.

    python benchmarks/zeroshot_modelnet.py [--seeds 0 1 2] [--jobs 2] [--recipes attributes ...]

Recipes (configs/3d): "zeroshot" aligns points with class captions and shape descriptions
(MultiPositiveLoss) and prompts unseen classes with their descriptions; "attributes" learns the
shared attribute vocabulary (QueryLoss) and prompts unseen classes with their attributes;
"combined" trains both losses, prompts unseen classes with attributes and seen ones with names
and descriptions; "names", the baseline of "zeroshot", captions training clouds with class names
only. Every run is also scored on the unseen classes with class-name prompts ("unseen_names/..."),
so knowledge and names compare both in training and in prompting (issue 15). Splits:
A (desk, night_stand, sofa held out), B (bathtub, monitor, toilet), C (bed, monitor, toilet, drawn
at random), D (bed, sofa, toilet) and E (bathtub, chair, monitor), both drawn at random too
(random.Random(2027) / (2028), the draw of C with the next seeds) and committed before any run. Each run trains from scratch with `facetvlp train ... --set engine.seed=S` into
work_dirs/3d/sweep/ and the table gives mean and standard deviation over seeds of its metrics.json.
Balanced accuracy is the figure to read against chance (1/3 on the unseen classes, whatever the
class sizes); top-1 is shown with the majority-class baseline of the same images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"A": "", "B": "_splitb", "C": "_splitc", "D": "_splitd", "E": "_splite"}
COLUMNS = ("unseen/top1", "unseen/majority_baseline", "unseen/balanced_accuracy", "unseen/macro_auc",
           "unseen_names/balanced_accuracy", "unseen_names/macro_auc", "seen_val/top1",
           "all10_val/balanced_accuracy")


def config(recipe: str, split: str) -> Path:
    return REPO / "configs/3d" / f"ulip_pointbert_minilm_{recipe}_cpu{SPLITS[split]}.py"


def run(recipe: str, split: str, seed: int, out_root: Path) -> dict:
    work_dir = out_root / f"{recipe}_{split}_seed{seed}"
    metrics = work_dir / "metrics.json"
    if not metrics.exists():
        cmd = [sys.executable, "-m", "facetvlp", "train", str(config(recipe, split)), "--overwrite",
               "--set", f"engine.seed={seed}", "--set", f"work_dir={work_dir}"]  # a run that never finished starts over
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(metrics.read_text())


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--recipes", nargs="+", default=["zeroshot", "attributes", "combined", "names"])
    parser.add_argument("--jobs", type=int, default=2, help="training runs side by side")
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs/3d/sweep")
    args = parser.parse_args()
    jobs = [(r, s, seed) for r in args.recipes for s in args.splits for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: run(*job, args.out), jobs))
    print(f"| recipe | split | seeds | {' | '.join(COLUMNS)} |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for recipe in args.recipes:
        for split in args.splits:
            rows = [m for (r, s, _), m in zip(jobs, results) if (r, s) == (recipe, split)]
            cells = [cell([m[c] for m in rows]) for c in COLUMNS]
            print(f"| {recipe} | {split} | {len(rows)} | {' | '.join(cells)} |")
    for knowledge in ("zeroshot", "combined"):
        if {knowledge, "names"} <= set(args.recipes):
            paired(knowledge, args.splits, {job: m for job, m in zip(jobs, results)})


def paired(knowledge: str, splits: list[str], results: dict) -> None:
    """Knowledge against names, each recipe with its own prompts (the names recipe's are the
    class names: its "unseen_names" scores), per split and as the mean of the split means."""
    own = {knowledge: "unseen", "names": "unseen_names"}
    metrics = ("top1", "balanced_accuracy", "macro_auc")
    print(f"\n| split | seeds | chance (bal. acc.) | majority share | "
          + " | ".join(f"{r} {m}" for m in metrics for r in (knowledge, "names")) + " |")
    print("|---|---|---|---|" + "---|" * (2 * len(metrics)))
    split_means = {(r, m): [] for r in own for m in metrics}
    for split in splits:
        runs = {r: [v for (rr, ss, _), v in results.items() if (rr, ss) == (r, split)] for r in own}
        cells = []
        for m in metrics:
            for r in own:
                values = [v[f"{own[r]}/{m}"] for v in runs[r]]
                split_means[(r, m)].append(statistics.mean(values))
                cells.append(cell(values))
        majority = runs[knowledge][0]["unseen/majority_baseline"]
        print(f"| {split} | {len(runs[knowledge])} | 0.333 | {majority:.3f} | {' | '.join(cells)} |")
    cells = [cell(split_means[(r, m)]) for m in metrics for r in own]
    print(f"| mean of {''.join(splits)} | - | 0.333 | - | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
