"""Box grounding fine-tuned from a facetvlp pre-training checkpoint vs from random weights, at the
same budget, on real held-apart data; several seeds, one table.

    python benchmarks/grounding_finetune.py [--seeds 0 1] [--tasks tbx11k kampala] [--jobs 2]
        [--finetune-set schedule.max_steps=60] [--pretrain-set schedule.max_steps=50]

Tasks (configs/grounding): "tbx11k" finds the two tuberculosis classes on TBX11K radiographs
(held apart: 20 % of the images), starting from configs/medical/pneumonia_faceted_tiny_cpu.py;
"kampala" finds buildings on Kampala drone chips (held apart: the eastern third of the area),
starting from configs/remote_sensing/osm_captions_tiny_cpu.py pre-trained on the *western* chips
only, so no held-apart pixel is seen in pre-training either. Each pre-training runs once (seed 0);
each fine-tuning runs per seed with `facetvlp finetune ... --from` (pretrained) or without
(random) into work_dirs/grounding/sweep/. The table gives mean ± sd over seeds of AP50, mAP and
Acc@0.5 on the held-apart split. `--finetune-set` / `--pretrain-set` pass config overrides to
every fine-tuning / pre-training run (e.g. a smaller step budget on a crowded machine); a run whose
metrics.json already exists is reused, so change `--out` along with the budget.
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
KAMPALA = REPO.parent / "shared/data/remote_sensing/kampala_chips_osm_buildings/chips"
# zoom-21 chips under the western zoom-19 tiles (x 309612-309613, i.e. x >> 2 at zoom 21)
WEST_Z21 = [str(p) for p in sorted(KAMPALA.glob("OAM-*-*-21.tif")) if int(p.stem.split("-")[1]) >> 2 < 309614]
TASKS = {
    "tbx11k": dict(config="configs/grounding/tbx11k_boxes_tiny_cpu.py", metric_prefix="tbx_val",
                   pretrain="configs/medical/pneumonia_faceted_tiny_cpu.py", pretrain_set=[]),
    "kampala": dict(config="configs/grounding/kampala_buildings_tiny_cpu.py", metric_prefix="kampala_east",
                    pretrain="configs/remote_sensing/osm_captions_tiny_cpu.py",
                    pretrain_set=[f"train_data.dataset.scenes={WEST_Z21!r}"]),
}
COLUMNS = ("map_50", "map", "acc@0.5")


def facetvlp(*args: str) -> None:
    cmd = [sys.executable, "-m", "facetvlp", *args]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")


def pretrain(task: str, out_root: Path, extra: list[str]) -> Path:
    spec = TASKS[task]
    work_dir = out_root / f"{task}_pretrain"
    if not (work_dir / "checkpoints" / "latest.json").exists():
        sets = [f"work_dir={work_dir}", "engine.eval_at_end=False", *spec["pretrain_set"], *extra]
        facetvlp("train", spec["pretrain"], "--overwrite", *sum((["--set", s] for s in sets), []))
    return work_dir


def finetune(task: str, init: str, seed: int, pretrained: Path, out_root: Path, extra: list[str]) -> dict:
    spec = TASKS[task]
    work_dir = out_root / f"{task}_{init}_seed{seed}"
    metrics = work_dir / "metrics.json"
    if not metrics.exists():
        args = ["finetune", spec["config"], "--overwrite", "--set", f"engine.seed={seed}",
                "--set", f"work_dir={work_dir}", *sum((["--set", s] for s in extra), [])]
        if init == "pretrained":
            args += ["--from", str(pretrained)]
        facetvlp(*args)
    found = json.loads(metrics.read_text())
    return {c: found[f"{spec['metric_prefix']}/{c}"] for c in COLUMNS}


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--jobs", type=int, default=2, help="fine-tuning runs side by side")
    parser.add_argument("--out", default="work_dirs/grounding/sweep")
    parser.add_argument("--finetune-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    out_root = (REPO / args.out).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    print(f"| task | init | {' | '.join(COLUMNS)} |\n|---|---|{'---|' * len(COLUMNS)}")
    for task in args.tasks:
        checkpoint = pretrain(task, out_root, args.pretrain_set)
        runs = [(init, seed) for init in ("pretrained", "random") for seed in args.seeds]
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda r: finetune(task, r[0], r[1], checkpoint, out_root, args.finetune_set), runs))
        for init in ("pretrained", "random"):
            rows = [res for (i, _), res in zip(runs, results) if i == init]
            print(f"| {task} | {init} | " + " | ".join(cell([r[c] for r in rows]) for c in COLUMNS) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
