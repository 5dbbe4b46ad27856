"""Segmentation fine-tuning per domain: facetvlp pre-trained vs random encoder, 10 % vs 100 % labels.

    nice -n 10 python benchmarks/segmentation_finetune.py [--tasks lung kampala lidar ct]
        [--seeds 0 1] [--fractions 0.1 1.0] [--inits pretrained random] [--jobs 2] [--no-run]

Each task pairs a config in configs/segmentation/ with the tiny pre-training config whose
encoder it shares. The encoder is pre-trained once per task (`facetvlp train PRETRAIN --set
engine.eval_at_end=False --set work_dir=...`); for Kampala the pre-training sees only the
zoom-21 chips of the training groups, so no pixel of the held-apart split is seen before its
evaluation. Then every (init, fraction, seed) runs `facetvlp finetune CONFIG [--from PRETRAINED]
--set train_data.dataset.fraction=F --set train_data.dataset.seed=S --set engine.seed=S` with the
config's budget, and the table gives mean ± sd over seeds of the headline metric on the config's
held-apart split (Dice of the foreground class for lung, mean Dice over the organs for ct, mIoU
over all classes otherwise). "ct" has one training scan: run it with --fractions 1.0.
Runs whose metrics.json exists under --out are read, not rerun, so a sweep can be resumed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "facetvlp"]
# task -> (fine-tuning config, pre-training config, headline metric in metrics.json)
TASKS = {
    "lung": ("configs/segmentation/lung_cxr_resnet10t_cpu.py",
             "configs/medical/pneumonia_faceted_tiny_cpu.py", "seg/mdice"),
    "kampala": ("configs/segmentation/kampala_buildings_resnet18_cpu.py",
                "configs/remote_sensing/osm_captions_tiny_cpu.py", "seg/miou"),
    "lidar": ("configs/segmentation/lidar_asprs_pointbert_cpu.py",
              "configs/3d/ulip_pointbert_tiny_cpu.py", "seg/miou"),
    # one training scan: run with --fractions 1.0 (a tenth of one patient is not a label fraction)
    "ct": ("configs/segmentation/ct_organs_unetr_cpu.py",
           "configs/medical/pneumonia_faceted_vit_tiny_cpu.py", "seg/mdice"),
}


def call(cmd: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}), see {log}")


def kampala_training_chips(config: str) -> list[str]:
    """The zoom-21 chips of the fine-tuning config's training groups (pre-training sees only these)."""
    from facetvlp.core.config import load_config
    from facetvlp.core.registry import DATASETS, build
    from facetvlp.domains import load_all

    load_all()
    train = build(DATASETS, load_config(str(REPO / config)).train_data.dataset["dataset"])
    paths = {train.sources[train.sampler[t].scene].path for t in train.tiles}
    return sorted(str(p) for p in paths if str(p).endswith("-21.tif"))


def pretrain(task: str, out_root: Path) -> Path:
    config, pretrain_config, _ = TASKS[task]
    work_dir = out_root / f"pretrain_{task}"
    if (work_dir / "metrics.json").exists():
        return work_dir
    cmd = CLI + ["train", pretrain_config, "--set", "engine.eval_at_end=False",
                 "--set", f"work_dir={work_dir}"]
    if task == "kampala":
        cmd += ["--set", f"train_data.dataset.scenes={kampala_training_chips(config)!r}"]
    call(cmd, out_root / f"pretrain_{task}.log")
    return work_dir


def finetune(task: str, init: str, fraction: float, seed: int, out_root: Path,
             pretrained: Path | None, run_missing: bool = True) -> dict:
    config, _, key = TASKS[task]
    work_dir = out_root / task / f"{init}_f{fraction}_seed{seed}"
    metrics = work_dir / "metrics.json"
    # metrics.json is first written at the end of training; the run is done once it has the metric
    if not (metrics.exists() and key in json.loads(metrics.read_text())):
        if not run_missing:
            raise RuntimeError(f"{work_dir}: not run (--no-run)")
        cmd = CLI + ["finetune", config, "--work-dir", str(work_dir),
                     "--set", f"train_data.dataset.fraction={fraction}",
                     "--set", f"train_data.dataset.seed={seed}", "--set", f"engine.seed={seed}"]
        if init == "pretrained":
            cmd += ["--from", str(pretrained)]
        call(cmd, work_dir.parent / f"{work_dir.name}.log")  # not with_suffix: "f0.1" has a dot
    return json.loads(metrics.read_text())


def cell(values: list[float]) -> str:
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f} ({len(values)} seeds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--inits", nargs="+", default=["pretrained", "random"],
                        choices=["pretrained", "random"])
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side (one thread each)")
    parser.add_argument("--no-run", action="store_true",
                        help="only tabulate the runs already finished under --out")
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs/segbench")
    args = parser.parse_args()

    runs = list(itertools.product(args.tasks, args.inits, args.fractions, args.seeds))
    with ThreadPoolExecutor(args.jobs) as pool:
        # pre-training first, side by side with the random-init runs that do not wait for it
        pretrained = {} if args.no_run else {
            t: pool.submit(pretrain, t, args.out) for t in args.tasks if "pretrained" in args.inits}

        def one(run):
            task, init, fraction, seed = run
            source = pretrained[task].result() if init == "pretrained" and not args.no_run else None
            return finetune(task, init, fraction, seed, args.out, source, run_missing=not args.no_run)

        futures = {run: pool.submit(one, run) for run in sorted(runs, key=lambda r: r[1] == "pretrained")}
        results = {}
        for run, future in futures.items():
            try:
                results[run] = future.result()
            except RuntimeError as error:
                print(error, file=sys.stderr)

    print("| task | metric | init | " + " | ".join(f"{f:.0%} labels" for f in args.fractions) + " |")
    print("|---|---|---|" + "---|" * len(args.fractions))
    for task, init in itertools.product(args.tasks, args.inits):
        key = TASKS[task][2]
        cells = [cell([results[(task, init, f, s)][key] for s in args.seeds
                       if (task, init, f, s) in results and key in results[(task, init, f, s)]])
                 for f in args.fractions]
        print(f"| {task} | {key} | {init} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
