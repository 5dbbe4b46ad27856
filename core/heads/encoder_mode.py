"""Encoder modes for fine-tuning (`frozen`, `last_n=N`, `full`) and frozen BatchNorm statistics."""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError
from ..towers.base import Tower

MODES = "'frozen', 'full' or 'last_n=N'"


def trainable_spec(mode: str | int) -> str | int:
    """An encoder mode -> `Tower.set_trainable`'s spec ('none', 'all' or a block count)."""
    if mode == "frozen":
        return "none"
    if mode == "full":
        return "all"
    if isinstance(mode, str) and mode.startswith("last_n="):
        count = mode.split("=", 1)[1]
        if count.isdigit():
            return int(count)
    raise ConfigError(f"encoder mode must be {MODES}, got {mode!r}")


def keep_frozen_norm_stats(towers: nn.ModuleDict) -> None:
    """Called after `train()`: a frozen tower goes back to eval mode, and in a partly frozen one
    every BatchNorm whose weights are frozen does too, so its running statistics stay those of
    pre-training (a frozen layer must behave the same in every step, not drift with the batches
    of the new task)."""
    for tower in towers.values():
        if getattr(tower, "frozen", False):
            tower.eval()
            continue
        for module in tower.modules():
            params = list(module.parameters(recurse=False))
            if isinstance(module, _BatchNorm) and params and not any(p.requires_grad for p in params):
                module.eval()


def run_maybe_frozen(tower: Tower, fn, *args):
    """`fn(*args)` without autograd when the tower is frozen: no activations kept for backward."""
    with torch.no_grad() if tower.frozen else contextlib.nullcontext():
        return fn(*args)
