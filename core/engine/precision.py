"""`engine.precision="auto"`: bf16 autocast where the device computes bf16 natively, else fp32.

On a CPU without AVX-512-BF16 or AMX, bf16 autocast is emulated and slow: measured for issue 9
with `benchmarks/train_step.py`'s builders (ViT-Tiny + MiniLM, batch 16, an AVX2-only CPU),
fp32 ran 10.8 samples/s and bf16 0.64 samples/s, 17x slower.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

#: /proc/cpuinfo flags of x86 CPUs that compute bf16 in hardware (AVX-512-BF16, AMX tiles)
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")

EMULATED_BF16_COST = ("bf16 autocast is emulated on this CPU (no AVX-512-BF16 or AMX); issue 9 "
                      "measured ViT-Tiny + MiniLM at batch 16 on an AVX2 CPU: fp32 10.8 samples/s, "
                      "bf16 0.64 samples/s (17x slower). Use precision='auto' or 'fp32' here")


def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str] | None:
    """The native-bf16 flags this CPU reports, or None when the OS does not say (no /proc)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` runs bf16 natively, and why we think so."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, f"CUDA device {torch.cuda.get_device_name(device)} supports bf16"
        return False, f"CUDA device {torch.cuda.get_device_name(device)} has no bf16 support"
    if device.type == "cpu":
        flags = cpu_bf16_flags()
        if flags is None:
            return False, "CPU bf16 support unknown (no /proc/cpuinfo)"
        if flags:
            return True, f"CPU has {' and '.join(flags)}"
        return False, "CPU has neither amx_bf16 nor avx512_bf16"
    return False, f"no bf16 probe for device type {device.type!r}"


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """("bf16" | "fp32", reason) for the configured precision on this device."""
    if requested == "fp32":
        return "fp32", "set in the config"
    native, why = native_bf16(device)
    if requested == "bf16":
        return "bf16", f"set in the config ({why})"
    return ("bf16" if native else "fp32"), f"auto: {why}"


def report_precision(requested: str, device: torch.device, chosen: str, reason: str) -> None:
    """Log the choice; warn when a config asks for bf16 on a CPU that only emulates it."""
    log.info("precision %s (%s)", chosen, reason)
    if requested == "bf16" and device.type == "cpu":
        native, why = native_bf16(device)
        if not native:
            log.warning("precision='bf16': %s. %s", why, EMULATED_BF16_COST)
