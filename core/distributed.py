"""Distributed helpers the losses use; every one is a no-op in a single process.

Contrastive losses want the whole global batch as negatives, so each rank gathers the embeddings
of every other rank. Two ways to keep gradients flowing (the choice open_clip offers too):

- ``gather_with_grad=True``: a differentiable all-gather. Its backward sums, into each rank's
  shard, the gradients that every rank's loss put on it (a reduce-scatter), so the gradient that
  DDP then averages is exactly the single-process gradient of the global batch.
- ``gather_with_grad=False``: a plain all-gather with the local shard put back in place, so only
  this rank's loss sends gradient into this rank's shard. No communication in backward.

Ranks may hold different batch sizes (a dataset with ``on_error="skip"`` drops bad items before
the collate), so shards are padded to the largest size for the collective and cut back after.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


class WorldInfo(NamedTuple):
    rank: int
    world_size: int


def world_info() -> WorldInfo:
    """This process's rank and the world size; (0, 1) when torch.distributed is not running."""
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_rank(), dist.get_world_size())
    return WorldInfo(0, 1)


def gather_sizes(n: int, device: torch.device | str = "cpu") -> list[int]:
    """The first-dimension size of every rank's shard, in rank order."""
    rank, world = world_info()
    if world == 1:
        return [n]
    local = torch.tensor([n], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(local) for _ in range(world)]
    dist.all_gather(sizes, local)
    return [int(s.item()) for s in sizes]


def gather_features(
    x: torch.Tensor, gather_with_grad: bool, sizes: Sequence[int] | None = None
) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, in rank order.

    ``sizes`` (from :func:`gather_sizes`) saves one small collective when the caller gathers
    several tensors of the same batch.
    """
    rank, world = world_info()
    if world == 1:
        return x
    if sizes is None:
        sizes = gather_sizes(x.shape[0], x.device)
    largest = max(sizes)
    padded = x
    if x.shape[0] < largest:
        pad = x.new_zeros((largest - x.shape[0],) + tuple(x.shape[1:]))
        padded = torch.cat([x, pad], dim=0)
    if gather_with_grad:
        shards = list(dist_fn.all_gather(padded.contiguous()))
    else:
        shards = [torch.empty_like(padded) for _ in range(world)]
        with torch.no_grad():
            dist.all_gather(shards, padded.contiguous())
        shards[rank] = x  # the local shard keeps its autograd history
    return torch.cat([shard[:n] for shard, n in zip(shards, sizes)], dim=0)


def shard_offset(sizes: Sequence[int]) -> int:
    """Index of this rank's first row in the gathered batch."""
    return int(sum(sizes[: world_info().rank]))


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by a constant."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def scale_grad(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``x`` unchanged, but its gradient multiplied by ``factor`` on the way back."""
    if factor == 1:
        return x
    return _ScaleGrad.apply(x, factor)
