"""Zero-shot on AID scene classes held out of training: knowledge vs class names, one table.

    python benchmarks/zeroshot_aid.py [--splits A B C] [--seeds 0 1 2] [--recipes knowledge names]
    python benchmarks/zeroshot_aid.py --report    # the table of the runs finished so far

Splits and seeds come from benchmarks/zeroshot_aid_splits.json (committed before any run): each
holds 6 of the 30 AID classes out of training. Recipes (configs/remote_sensing): "knowledge"
captions every training image with its class's knowledge entry (iD preset names and terms,
related presets, visual descriptions), "names" with its class name in three templates; the model,
data and steps are the same. Every run is scored with both prompt sets (knowledge entries and
class names) on the held-out classes and, cross-dataset, on the 7 RSSCN7 classes. Each run is
`facetvlp train CONFIG --overwrite --set ...` into work_dirs/remote_sensing/aid_zeroshot/ (a finished run is
read back, not repeated), one at a time and all in this process (on a crowded CPU the start-up
of a fresh process costs a minute or more per run), seeds in the outer loop so that a sweep cut
short still covers every split; the table gives mean ± sd over seeds of its
metrics.json, then the mean over splits. Chance is 1/6 on the held-out classes (14 images each,
so the majority baseline is 1/6 as well), 1/7 on RSSCN7; AUC's chance is 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import facetvlp.domains.remote_sensing  # noqa: F401  (registers the remote-sensing types)
from facetvlp.core.config import load_config
from facetvlp.core.engine import train

REPO = Path(__file__).resolve().parents[1]
SPLITS_FILE = REPO / "benchmarks" / "zeroshot_aid_splits.json"
AID = REPO.parent / "shared/data/remote_sensing/aid_scenes_150px/AID"
CONFIGS = {"knowledge": "configs/remote_sensing/aid_zeroshot_knowledge_cpu.py",
           "names": "configs/remote_sensing/aid_zeroshot_names_cpu.py"}
# (column title, metric key); "k" = knowledge prompts, "n" = class-name prompts
COLUMNS = (
    ("unseen majority", "unseen_knowledge/majority_baseline"),
    ("unseen top-1 k", "unseen_knowledge/top1"), ("unseen top-1 n", "unseen_names/top1"),
    ("unseen bal. acc. k", "unseen_knowledge/balanced_accuracy"),
    ("unseen bal. acc. n", "unseen_names/balanced_accuracy"),
    ("unseen AUC k", "unseen_knowledge/macro_auc"), ("unseen AUC n", "unseen_names/macro_auc"),
    ("RSSCN7 bal. acc. k", "rsscn7_knowledge/balanced_accuracy"),
    ("RSSCN7 bal. acc. n", "rsscn7_names/balanced_accuracy"),
    ("RSSCN7 AUC k", "rsscn7_knowledge/macro_auc"), ("RSSCN7 AUC n", "rsscn7_names/macro_auc"),
    ("seen val top-1, k prompts", "seen_val/top1"),
)


def split_overrides(unseen: list[str], classes: list[str]) -> list[str]:
    seen = [c for c in classes if c not in unseen]
    sets = [f"train_data.dataset.classes={seen}", f"eval.seen_val.dataset.classes={seen}"]
    sets += [f"eval.{name}.dataset.classes={unseen}" for name in ("unseen_knowledge", "unseen_names")]
    return sets


def run(recipe: str, split: str, unseen: list[str], seed: int, classes: list[str], out: Path) -> dict:
    work_dir = out / f"{recipe}_{split}_seed{seed}"
    metrics = work_dir / "metrics.json"
    if not metrics.exists():  # a run that never finished starts over
        sets = [f"engine.seed={seed}", f"work_dir={work_dir}", *split_overrides(unseen, classes)]
        print(f"running {recipe} split {split} seed {seed}", file=sys.stderr, flush=True)
        train(load_config(REPO / CONFIGS[recipe], sets), overwrite=True)
    return json.loads(metrics.read_text())


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    fixed = json.loads(SPLITS_FILE.read_text())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", nargs="+", default=list(fixed["splits"]),
                        choices=list(fixed["splits"]))
    parser.add_argument("--seeds", type=int, nargs="+", default=fixed["seeds"])
    parser.add_argument("--recipes", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs/remote_sensing/aid_zeroshot")
    parser.add_argument("--report", action="store_true", help="train nothing; tabulate finished runs")
    args = parser.parse_args()
    classes = sorted(d.name for d in AID.iterdir() if d.is_dir())
    os.chdir(REPO)  # the configs' data paths are relative to the repository root
    if not args.report:
        for seed in args.seeds:
            for split in args.splits:
                for recipe in args.recipes:  # recipes side by side: a cut-short sweep stays paired
                    unseen = fixed["splits"][split]["unseen"]
                    run(recipe, split, unseen, seed, classes, args.out)
    results = {}
    for recipe in args.recipes:
        for split in args.splits:
            for seed in args.seeds:
                metrics = args.out / f"{recipe}_{split}_seed{seed}" / "metrics.json"
                found = json.loads(metrics.read_text()) if metrics.exists() else {}
                if all(key in found for _, key in COLUMNS):  # a run still evaluating is not done
                    results.setdefault((recipe, split), []).append(found)
    print(f"| recipe | split | seeds | {' | '.join(title for title, _ in COLUMNS)} |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for recipe in args.recipes:
        done = [s for s in args.splits if (recipe, s) in results]
        for split in done:
            runs = results[recipe, split]
            values = [[m[key] for m in runs] for _, key in COLUMNS]
            print(f"| {recipe} | {split} | {len(runs)} | {' | '.join(cell(v) for v in values)} |")
        if len(done) > 1:  # mean over splits of the per-split seed means; sd across splits
            values = [[statistics.mean(m[key] for m in results[recipe, s]) for s in done]
                      for _, key in COLUMNS]
            print(f"| {recipe} | mean of {''.join(done)} | - | {' | '.join(cell(v) for v in values)} |")
    # the comparison the issue asks for: each recipe with its own prompts, paired by split and seed
    if set(CONFIGS) <= set(args.recipes):
        print("\n| split | seeds | metric | knowledge (captions + prompts) | names (captions + prompts) "
              "| knowledge better in |")
        print("|---|---|---|---|---|---|")
        metrics = ("unseen_{}/balanced_accuracy", "unseen_{}/macro_auc",
                   "rsscn7_{}/balanced_accuracy", "rsscn7_{}/macro_auc")
        means = {m: ([], []) for m in metrics}
        for split in args.splits:
            pairs = [(k, n) for k, n in zip(results.get(("knowledge", split), []),
                                            results.get(("names", split), []))]
            for metric in metrics if pairs else ():
                ours = [k[metric.format("knowledge")] for k, _ in pairs]
                base = [n[metric.format("names")] for _, n in pairs]
                means[metric][0].append(statistics.mean(ours))
                means[metric][1].append(statistics.mean(base))
                wins = sum(a > b for a, b in zip(ours, base))
                print(f"| {split} | {len(pairs)} | {metric.format('*')} | {cell(ours)} | {cell(base)} "
                      f"| {wins} of {len(pairs)} |")
        for metric, (ours, base) in means.items():
            if len(ours) > 1:  # mean over splits; sd across splits
                wins = sum(a > b for a, b in zip(ours, base))
                print(f"| mean of {len(ours)} splits | - | {metric.format('*')} | {cell(ours)} | "
                      f"{cell(base)} | {wins} of {len(ours)} splits |")
    chance = {"unseen": 1 / 6, "RSSCN7": 1 / 7}
    print(f"\nchance / majority: unseen top-1 and balanced accuracy {chance['unseen']:.3f}, "
          f"RSSCN7 {chance['RSSCN7']:.3f}, AUC 0.5; threads={os.environ.get('OMP_NUM_THREADS')}")


if __name__ == "__main__":
    main()
