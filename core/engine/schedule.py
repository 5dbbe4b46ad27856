"""Learning-rate schedule: linear warmup, then cosine decay. A pure function of the step, so a
resumed run needs no scheduler state beyond the step itself."""

from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, max_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0):
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
