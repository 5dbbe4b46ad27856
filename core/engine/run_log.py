"""What a run reports while it trains: a JSONL log, TensorBoard scalars and a progress bar with
samples/s and ETA. Only the main rank writes.

A run that starts at step s > 0 (a resume) continues the log of steps <= s: lines a killed run
wrote after its last checkpoint are dropped from log.jsonl and hidden in TensorBoard
(`purge_step`), because the resumed run writes those steps again. A run from step 0 starts both
afresh."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm


class RunLog:
    def __init__(self, work_dir: Path, total_steps: int, start_step: int, enabled: bool,
                 tensorboard: bool = True):
        self.enabled = enabled
        self.work_dir = work_dir
        self.jsonl = None
        self.writer = None
        self.bar = None
        self.started = time.perf_counter()
        self.samples = 0
        if not enabled:
            return
        self.jsonl = open_log_at(work_dir / "log.jsonl", start_step)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(work_dir / "tensorboard"),
                                        purge_step=start_step + 1 if start_step else None)
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        file=sys.stderr, disable=None)

    def step(self, step: int, scalars: dict[str, float], samples: int, write: bool) -> None:
        if not self.enabled:
            return
        self.samples += samples
        rate = self.samples / max(1e-9, time.perf_counter() - self.started)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{scalars.get('loss', float('nan')):.4f}", samples_s=f"{rate:.1f}")
        if write:
            record = {"step": step, **scalars, "samples_per_s": rate}
            self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
            if self.writer is not None:
                for key, value in scalars.items():
                    self.writer.add_scalar(f"train/{key}", value, step)

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(1e-9, time.perf_counter() - self.started)

    def close(self) -> None:
        for thing in (self.bar, self.writer, self.jsonl):
            if thing is not None:
                thing.close()


def open_log_at(path: Path, start_step: int):
    """log.jsonl opened for appending after its lines of steps <= start_step (all others dropped)."""
    kept = []
    if start_step and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= start_step:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                pass  # a line cut short by the kill
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    tmp.replace(path)
    return open(path, "a", encoding="utf-8")


def setup_logging(work_dir: Path | None, is_main: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if work_dir is not None and is_main:
        handlers.append(logging.FileHandler(work_dir / "run.log", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers, force=True,
    )
