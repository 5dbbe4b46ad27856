"""Worker for the 2-process gloo test in test_losses.py (a plain module so that spawn can import it).

Each rank embeds its shard of a fixed batch through shared linear maps, computes a loss, runs
backward, and averages loss and gradients over ranks exactly as DDP would. Rank 0 saves them.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from facetvlp.core.losses import CLIPLoss, MultiPositiveLoss, SigLIPLoss

LOSS_TYPES = {"CLIPLoss": CLIPLoss, "SigLIPLoss": SigLIPLoss, "MultiPositiveLoss": MultiPositiveLoss}


def loss_and_grads(data: dict, cfg: dict, rows: slice) -> dict[str, torch.Tensor]:
    """Loss and parameter gradients on ``rows`` of the batch (all rows in a single process)."""
    params = {k: data[k].clone().requires_grad_(True) for k in ("w_image", "w_text", "scale", "bias")}
    cfg = dict(cfg)
    loss_fn = LOSS_TYPES[cfg.pop("type")](**cfg)
    outputs = {
        "embeds": {
            "image": F.normalize(data["x_image"][rows] @ params["w_image"], dim=-1),
            "text": F.normalize(data["x_text"][rows] @ params["w_text"], dim=-1),
        },
        "logit_scale": params["scale"].exp(),
        "logit_bias": params["bias"],
    }
    loss = loss_fn(outputs, {"labels": data["labels"][rows]})["loss"]
    loss.backward()
    return {"loss": loss.detach(), **{k: p.grad for k, p in params.items()}}


def run(rank: int, world: int, init_file: str, out_file: str, data: dict, cfgs: list, shard_sizes: list):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        start = sum(shard_sizes[:rank])
        rows = slice(start, start + shard_sizes[rank])
        results = []
        for cfg in cfgs:
            result = loss_and_grads(data, cfg, rows)
            for value in result.values():
                dist.all_reduce(value)
                value /= world  # DDP averages gradients over ranks
            results.append(result)
        if rank == 0:
            torch.save(results, out_file)
    finally:
        dist.destroy_process_group()
