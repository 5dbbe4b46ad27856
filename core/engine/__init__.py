"""The training engine: a plain torch loop with DDP/FSDP2, bf16, resume and logs."""

from .trainer import TrainModule, train

__all__ = ["train", "TrainModule"]
