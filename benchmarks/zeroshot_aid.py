"""Zero-shot on AID scene classes held out of training: knowledge vs class names, one table.

    python benchmarks/zeroshot_aid.py [--splits A B C] [--seeds 0 1 2] [--recipes knowledge names]

Splits and seeds come from benchmarks/zeroshot_aid_splits.json (committed before any run): each
holds 6 of the 30 AID classes out of training. Recipes (configs/remote_sensing): "knowledge"
captions every training image with its class's knowledge entry (iD preset names and terms,
related presets, visual descriptions), "names" with its class name in three templates; the model,
data and steps are the same. Every run is scored with both prompt sets (knowledge entries and
class names) on the held-out classes and, cross-dataset, on the 7 RSSCN7 classes. Each run is
`facetvlp train CONFIG --set ...` into work_dirs/remote_sensing/aid_zeroshot/ (a finished run is
read back, not repeated), one at a time; the table gives mean ± sd over seeds of its
metrics.json, then the mean over splits. Chance is 1/6 on the held-out classes (14 images each,
so the majority baseline is 1/6 as well), 1/7 on RSSCN7; AUC's chance is 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

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
    ("seen val top-1 k", "seen_val/top1"),
)


def split_overrides(unseen: list[str], classes: list[str]) -> list[str]:
    seen = [c for c in classes if c not in unseen]
    sets = [f"train_data.dataset.classes={seen}", f"eval.seen_val.dataset.classes={seen}"]
    sets += [f"eval.{name}.dataset.classes={unseen}" for name in ("unseen_knowledge", "unseen_names")]
    return sets


def run(recipe: str, split: str, unseen: list[str], seed: int, classes: list[str], out: Path) -> dict:
    work_dir = out / f"{recipe}_{split}_seed{seed}"
    metrics = work_dir / "metrics.json"
    if not metrics.exists():
        cmd = [sys.executable, "-m", "facetvlp", "train", CONFIGS[recipe], "--overwrite",
               "--set", f"engine.seed={seed}", "--set", f"work_dir={work_dir}"]
        for item in split_overrides(unseen, classes):
            cmd += ["--set", item]
        print(f"running {recipe} split {split} seed {seed}", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
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
    args = parser.parse_args()
    classes = sorted(d.name for d in AID.iterdir() if d.is_dir())
    results = {}
    for split in args.splits:
        for seed in args.seeds:
            for recipe in args.recipes:  # recipes side by side per seed: a cut-short sweep stays paired
                unseen = fixed["splits"][split]["unseen"]
                results[recipe, split, seed] = run(recipe, split, unseen, seed, classes, args.out)
    print(f"| recipe | split | seeds | {' | '.join(title for title, _ in COLUMNS)} |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for recipe in args.recipes:
        for split in [*args.splits, "mean"]:
            splits = args.splits if split == "mean" else [split]
            if split == "mean":  # mean over splits of the per-split seed means; sd across splits
                values = [[statistics.mean(results[recipe, s, seed][key] for seed in args.seeds)
                           for s in splits] for _, key in COLUMNS]
            else:
                values = [[results[recipe, split, seed][key] for seed in args.seeds]
                          for _, key in COLUMNS]
            count = f"{len(args.seeds)}" if split != "mean" else f"{len(splits)} splits"
            print(f"| {recipe} | {split} | {count} | {' | '.join(cell(v) for v in values)} |")
    chance = {"unseen": 1 / 6, "RSSCN7": 1 / 7}
    print(f"\nchance / majority: unseen top-1 and balanced accuracy {chance['unseen']:.3f}, "
          f"RSSCN7 {chance['RSSCN7']:.3f}, AUC 0.5; threads={os.environ.get('OMP_NUM_THREADS')}")


if __name__ == "__main__":
    main()
