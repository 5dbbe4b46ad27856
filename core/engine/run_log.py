"""What a run reports while it trains: a JSONL log, TensorBoard scalars and a progress bar with
samples/s and ETA. Only the main rank writes."""

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
        self.jsonl = open(work_dir / "log.jsonl", "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(work_dir / "tensorboard"))
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


def setup_logging(work_dir: Path | None, is_main: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if work_dir is not None and is_main:
        handlers.append(logging.FileHandler(work_dir / "run.log", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers, force=True,
    )
