"""Worker for the 2-process gloo ITM test in test_fusion.py (a plain module so that spawn can
import it). Each rank holds 2 items whose label set is its own, so an item's only allowed
negatives are the other rank's; it draws hard negatives 40 times, runs the loss and backward."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.nn.functional as F

from facetvlp.core.fusion import build_fusion
from facetvlp.core.losses import ITMLoss
from facetvlp.core.losses.itm import gather_token_grid


def rank_items(rank: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(10 + rank)
    length = 4 + rank  # caption grids of different length on the two ranks
    return {"image": torch.randn(2, 3, 6, generator=g), "text": torch.randn(2, length, 8, generator=g),
            "image_embeds": F.normalize(torch.randn(2, 5, generator=g), dim=-1),
            "text_embeds": F.normalize(torch.randn(2, 5, generator=g), dim=-1)}


def run(rank: int, world: int, init_file: str, out_file: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same fusion weights on every rank, as DDP keeps them
        fusion = build_fusion(SimpleNamespace(width=8), image_width=6, depth=1, init="scratch",
                              heads=2, dropout=0.0, mlm=False)
        items = rank_items(rank)
        image = items["image"].requires_grad_(True)
        text = items["text"].requires_grad_(True)
        text_mask = torch.ones(text.shape[:2], dtype=torch.bool)
        text_mask[1, -1] = False
        outputs = {"embeds": {"image": items["image_embeds"], "text": items["text_embeds"]},
                   "tokens": {"image": image, "text": text},
                   "token_mask": {"image": None, "text": text_mask},
                   "fusion_tokens": {"image": image, "text": text}, "fusion": fusion,
                   "logit_scale": torch.tensor(2.0), "logit_bias": None}
        batch = {"labels": F.one_hot(torch.tensor([rank, rank]), 2).float(),
                 "text": [f"caption {rank} {i}" for i in range(2)]}
        itm = ITMLoss()
        torch.manual_seed(100 + rank)
        draws = [itm.hard_negatives(outputs, batch) for _ in range(40)]
        loss = itm(outputs, batch)["loss"]
        loss.backward()
        gathered, _ = gather_token_grid(text, text_mask, [2, 2])
        other = rank_items(1 - rank)["text"]
        start = 2 * (1 - rank)
        scored = torch.equal(gathered[start : start + 2, : other.shape[1]], other)
        result = {"draws": draws, "loss_finite": bool(torch.isfinite(loss)),
                  "local_grad": float(image.grad.abs().sum() + text.grad.abs().sum()),
                  "other_rank_tokens_scored": scored}
        results = [None] * world
        dist.all_gather_object(results, result)
        if rank == 0:
            torch.save(results, out_file)
    finally:
        dist.destroy_process_group()
