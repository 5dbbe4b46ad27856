"""One work dir holds one run.

Like open_clip, which refuses to reuse an experiment name, a new run does not start in a work dir
that already holds a run: `--resume` continues that run, `--overwrite` deletes its outputs first.
Without this, a second run would append to the first one's log, merge into its metrics and share
its checkpoint folder. Data caches in the work dir (e.g. a domain's pairs cache) are not outputs
of a run and are kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ConfigError
from .checkpoint import LATEST, checkpoint_files

#: what a training run and its evaluations write at the top of the work dir (plots are *.png)
RUN_FILES = ("log.jsonl", "metrics.json", "run.log", "config.py")
RUN_DIRS = ("checkpoints", "tensorboard")


def previous_run(work_dir: Path) -> str | None:
    """What shows that `work_dir` holds a run (a checkpoint, a training log, metrics), or None."""
    latest = work_dir / "checkpoints" / LATEST
    if latest.is_file():
        try:
            return f"a checkpoint at step {json.loads(latest.read_text())['step']}"
        except (ValueError, KeyError):
            return f"a checkpoint pointer {latest}"
    if checkpoint_files(work_dir / "checkpoints"):
        return "checkpoints"
    log_file = work_dir / "log.jsonl"
    if log_file.is_file() and log_file.stat().st_size > 0:
        return "a training log (log.jsonl)"
    if (work_dir / "metrics.json").is_file():
        return "metrics.json"
    return None


def remove_run(work_dir: Path) -> None:
    """Delete a run's outputs: checkpoints, logs, TensorBoard events, metrics, plots, config."""
    for name in RUN_DIRS:
        shutil.rmtree(work_dir / name, ignore_errors=True)
    for name in RUN_FILES:
        (work_dir / name).unlink(missing_ok=True)
    for plot in work_dir.glob("*.png"):
        plot.unlink()


def prepare_work_dir(work_dir: Path, resume: bool, overwrite: bool, where: str = "config",
                     clear: bool = True) -> str | None:
    """Refuse a new run in a used work dir, or clear it with `overwrite`; a resume uses it as is.

    Every rank checks (so all refuse alike); only the one with `clear` deletes and creates.
    Returns what `overwrite` removed (for the log, which is only set up afterwards), or None."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the work dir, --overwrite deletes it: pick one")
    found = None
    if work_dir.is_dir() and not resume:
        found = previous_run(work_dir)
        if found and not overwrite:
            raise ConfigError(f"{where}: work_dir {work_dir} already holds a run ({found}); "
                              "continue it with --resume or delete it and start over with --overwrite")
        if overwrite and clear:
            remove_run(work_dir)
    if clear:
        (work_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return found
