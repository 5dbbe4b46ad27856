"""Process-group set-up for runs started by `torchrun` (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Placement:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> Placement:
    """Join the process group torchrun describes in the environment, or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
    else:
        target = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return Placement(rank, world, local_rank, target)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, placement: Placement) -> bool:
    """True on every rank if `flag` is true on any rank (agreeing on SIGTERM, for example)."""
    return any_rank_each([flag], placement)[0]


def any_rank_each(flags: list[bool], placement: Placement) -> list[bool]:
    """`any_rank` for several flags in one collective."""
    if placement.world == 1:
        return list(flags)
    values = torch.tensor([int(f) for f in flags], device=placement.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]
