"""ITMLoss: image-text matching with hard negatives mined across all ranks (ALBEF, Li et al.
2021; BLIP, Li et al. 2022), scored by the model's fusion encoder (core/fusion.py).

Each rank scores its B true pairs and 2B negatives: for every local image one text drawn with
probability softmax(scale * <image, text>) over the texts of the *global* batch (every rank's), and
for every local text one image drawn the same way, so the negatives are the ones the contrastive
embedding finds hardest, wherever they live. A pair is never its own negative, and neither are
two items with identical label vectors (two "normal" X-rays) or identical captions (the same OSM
caption on two tiles): they would be false negatives. An item with no allowed partner contributes
no negative. Other ranks' token grids are gathered with gradient (BLIP gathers image tokens the
same way), so a negative's tokens get the gradient its rank would get, and the mean over ranks of
the per-rank losses, which DDP's gradient average sees, is the loss.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable

import torch
import torch.nn.functional as F

from ..distributed import gather_features, gather_sizes, shard_offset
from ..errors import ConfigError
from ..registry import LOSSES
from .base import PairLoss, full_precision, token_mask


def sample_negatives(logits: torch.Tensor, forbidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row with an allowed column, one column drawn from softmax over allowed columns.

    Returns (rows, drawn columns)."""
    rows = (~forbidden).any(dim=1).nonzero().squeeze(1)
    if rows.numel() == 0:
        return rows, rows
    probs = logits[rows].masked_fill(forbidden[rows], float("-inf")).softmax(dim=1)
    return rows, torch.multinomial(probs, 1).squeeze(1)


def gather_token_grid(tokens: torch.Tensor, mask: torch.Tensor, sizes: list[int]):
    """Every rank's (B_r, T_r, W) token grid, padded to the longest T with mask False, joined in
    rank order; the tokens keep their gradient (a differentiable all-gather)."""
    longest = max(gather_sizes(tokens.shape[1], tokens.device))
    extra = longest - tokens.shape[1]
    tokens = F.pad(tokens, (0, 0, 0, extra))
    mask = F.pad(mask.long(), (0, extra))
    return gather_features(tokens, True, sizes), gather_features(mask, False, sizes).bool()


def caption_keys(batch: dict[str, Any], n: int, device) -> torch.Tensor | None:
    """A CRC-32 per caption (equal across processes, unlike Python's salted hash), or None."""
    texts = batch.get("text")
    if not isinstance(texts, list) or len(texts) != n or not all(isinstance(t, str) for t in texts):
        return None
    return torch.tensor([zlib.crc32(t.encode("utf-8")) for t in texts], dtype=torch.long, device=device)


@LOSSES.register_module()
class ITMLoss(PairLoss):
    name = "itm"
    needs_tokens = True

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "text"),)):
        super().__init__(pairs)
        if self.pairs != (("image", "text"),):
            raise ConfigError(f"ITMLoss scores (image, text) pairs with the model's fusion encoder; "
                              f"got pairs={self.pairs}", key="pairs")

    def hard_negatives(self, outputs: dict[str, Any], batch: dict[str, Any]):
        """Indices into the global batch (ranks in order) of the pairs this rank scores: (image
        index, text index, target), positives first, then image-side and text-side negatives."""
        x, y = outputs["embeds"]["image"], outputs["embeds"]["text"]
        n, device = x.shape[0], x.device
        sizes = gather_sizes(n, device)
        offset = shard_offset(sizes)
        with torch.no_grad(), full_precision(device):
            all_x = gather_features(x.detach().float(), False, sizes)
            all_y = gather_features(y.detach().float(), False, sizes)
            scale = outputs["logit_scale"].detach().float()
            own = torch.arange(n, device=device) + offset
            forbidden = own[:, None] == torch.arange(sum(sizes), device=device)[None, :]
            for key in (batch.get("labels"), caption_keys(batch, n, device)):
                if key is None:
                    continue
                key = key.to(device).reshape(n, -1)
                everyone = gather_features(key, False, sizes)
                forbidden |= (key[:, None, :] == everyone[None, :, :]).all(dim=-1)
            rows_image, neg_text = sample_negatives(scale * x.float() @ all_y.T, forbidden)
            rows_text, neg_image = sample_negatives(scale * y.float() @ all_x.T, forbidden)
        image_index = torch.cat([own, own[rows_image], neg_image])
        text_index = torch.cat([own, neg_text, own[rows_text]])
        target = torch.cat([torch.ones(n, device=device, dtype=torch.long),
                            torch.zeros(len(rows_image) + len(rows_text), device=device, dtype=torch.long)])
        return image_index, text_index, target

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        fusion = outputs.get("fusion")
        if fusion is None or "image" not in outputs.get("fusion_tokens", {}):
            raise ConfigError("ITMLoss needs the model's fusion encoder: set model.fusion=dict(...)")
        image_index, text_index, target = self.hard_negatives(outputs, batch)
        sizes = gather_sizes(outputs["embeds"]["image"].shape[0], target.device)
        image, image_mask = gather_token_grid(outputs["fusion_tokens"]["image"],
                                              token_mask(outputs, "image"), sizes)
        text, text_mask = gather_token_grid(outputs["fusion_tokens"]["text"],
                                            token_mask(outputs, "text"), sizes)
        logits = fusion.match_logits(text[text_index], text_mask[text_index],
                                     image[image_index], image_mask[image_index])
        with full_precision(target.device):
            return F.cross_entropy(logits.float(), target)
