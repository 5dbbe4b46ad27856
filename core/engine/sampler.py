"""The order in which a run sees its data, identical whatever the world size.

Every epoch is one seeded permutation of the dataset. Step s consumes the global batch
perm[s*G:(s+1)*G] (G = micro-batch x world x accumulation), and rank r's micro-batch m is the
slice at offset (m*world + r)*B inside it. Gathered in rank order, the global batch is the same as a
single process with batch G would see, which is what makes a 2-process run and a 1-process run
produce the same losses. The position (epoch, step) is part of every checkpoint.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from ..errors import ConfigError


class ResumableSampler(Sampler[int]):
    def __init__(self, size: int, micro_batch: int, world: int = 1, rank: int = 0,
                 accumulation: int = 1, seed: int = 0, shuffle: bool = True):
        self.size = size
        self.micro_batch = micro_batch
        self.world = world
        self.rank = rank
        self.accumulation = accumulation
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start_step = 0
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"the dataset has {size} items, fewer than one global batch of {self.global_batch} "
                f"(batch_size {micro_batch} x {world} process(es) x grad_accum {accumulation})",
                key="train_data.batch_size",
            )

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.world * self.accumulation

    @property
    def steps_per_epoch(self) -> int:
        return self.size // self.global_batch  # the last incomplete global batch is dropped

    def set_position(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def permutation(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()

    def __iter__(self):
        perm = self.permutation()
        B, G = self.micro_batch, self.global_batch
        for step in range(self.start_step, self.steps_per_epoch):
            for micro in range(self.accumulation):
                offset = step * G + (micro * self.world + self.rank) * B
                yield from perm[offset : offset + B]

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.accumulation * self.micro_batch
