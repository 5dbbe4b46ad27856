"""Run under torchrun by test_engine_ddp.py: train a config while recording, in order, every
forward of the training module and every gradient synchronisation (DDP's bucket all-reduces
through a counting comm hook; FSDP2's reduce-scatters through torch.distributed), then write the
sequence to OUT/events_<rank>.json.

usage: torchrun --nproc-per-node 2 grad_sync_worker.py CONFIG OUT [KEY=VALUE ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import trainer

events: list[str] = []

original_forward = trainer.TrainModule.forward
original_wrap = trainer.wrap_parallel
original_reduce_scatter = dist.reduce_scatter_single


def recorded_forward(self, *args, **kwargs):
    events.append("forward")
    return original_forward(self, *args, **kwargs)


def counting_hook(state, bucket):
    events.append("sync")
    return default_hooks.allreduce_hook(None, bucket)


def recorded_wrap(*args, **kwargs):
    runner = original_wrap(*args, **kwargs)
    if isinstance(runner, DistributedDataParallel):
        runner.register_comm_hook(None, counting_hook)
    return runner


def recorded_reduce_scatter(*args, **kwargs):
    events.append("sync")
    return original_reduce_scatter(*args, **kwargs)


def main() -> None:
    config, out, overrides = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    trainer.TrainModule.forward = recorded_forward
    trainer.wrap_parallel = recorded_wrap
    dist.reduce_scatter_single = recorded_reduce_scatter
    try:
        trainer.train(load_config(config, overrides))
        out.mkdir(parents=True, exist_ok=True)
        (out / f"events_{dist.get_rank()}.json").write_text(json.dumps(events))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
