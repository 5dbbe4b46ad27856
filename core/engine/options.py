"""The `engine` section of a config, with defaults and validation in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from ..errors import ConfigError


@dataclass
class EngineOptions:
    precision: str = "auto"  # "auto" (bf16 where the device runs it natively), "bf16" or "fp32"
    device: str | None = None  # None: cuda when available, else cpu
    grad_accum: int = 1
    clip_grad: float | None = 1.0
    mask_ratio: float = 0.0  # FLIP: share of image patches dropped during training
    grad_checkpointing: bool = False
    compile: bool = False
    seed: int = 0
    deterministic: bool = False
    strategy: str = "ddp"  # or "fsdp" (FSDP2 fully_shard)
    find_unused_parameters: bool = False
    log_every: int = 10
    ckpt_every: int = 0  # steps; 0 = no step cadence
    ckpt_every_minutes: float = 10.0  # also save when this much time passed since the last save; 0 = off
    keep_checkpoints: int = 2
    tensorboard: bool = True
    eval_at_end: bool = True
    threads: int | None = None  # torch intra-op threads on CPU
    # Written by the engine into the run's dumped config.py (what "auto" became, and why); a value
    # given in a config is ignored and overwritten.
    precision_resolved: str | None = None
    precision_reason: str | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, where: str = "engine") -> "EngineOptions":
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; valid: {sorted(known)}")
        options = cls(**section)
        if options.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"{where}.precision must be 'auto', 'bf16' or 'fp32', got {options.precision!r}")
        if options.strategy not in ("ddp", "fsdp"):
            raise ConfigError(f"{where}.strategy must be 'ddp' or 'fsdp', got {options.strategy!r}")
        if not 0.0 <= options.mask_ratio < 1.0:
            raise ConfigError(f"{where}.mask_ratio must be in [0, 1), got {options.mask_ratio}")
        if options.ckpt_every < 0 or options.ckpt_every_minutes < 0:
            raise ConfigError(f"{where}.ckpt_every and ckpt_every_minutes must be >= 0 (0 = off)")
        if options.grad_accum < 1:
            raise ConfigError(f"{where}.grad_accum must be >= 1")
        return options
