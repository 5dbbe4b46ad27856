"""The `engine` section of a config, with defaults and validation in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, get_type_hints

from ..config_schema import (check_value, describe_type, int_at_least, number_at_least, optional,
                             type_matches, unknown_key)
from ..errors import ConfigError

#: bounds beyond the type (which the annotations give)
RANGES = {
    "grad_accum": int_at_least(1),
    "clip_grad": optional(number_at_least(0.0)),  # 0 or None: no clipping
    "log_every": int_at_least(1),
    "ckpt_every": int_at_least(0),
    "ckpt_every_minutes": number_at_least(0.0),
    "keep_checkpoints": int_at_least(1),
    "threads": optional(int_at_least(1)),
}


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
        hints = get_type_hints(cls)
        for key, value in section.items():
            if key not in hints:
                raise unknown_key(key, hints, where)
            if not type_matches(value, hints[key]):
                raise ConfigError(f"must be {describe_type(hints[key])}, got {value!r}", key=f"{where}.{key}")
        options = cls(**section)
        for key, rule in RANGES.items():
            check_value(getattr(options, key), rule, f"{where}.{key}")
        if options.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"{where}.precision must be 'auto', 'bf16' or 'fp32', got {options.precision!r}")
        if options.strategy not in ("ddp", "fsdp"):
            raise ConfigError(f"{where}.strategy must be 'ddp' or 'fsdp', got {options.strategy!r}")
        if not 0.0 <= options.mask_ratio < 1.0:
            raise ConfigError(f"{where}.mask_ratio must be in [0, 1), got {options.mask_ratio}")
        return options
