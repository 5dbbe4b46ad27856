"""What every facetvlp loss shares: the ``pairs`` it aligns and the shape of what it returns.

A loss is called as ``loss(outputs, batch)`` with the model outputs described in
docs/architecture.md and returns ``{"loss": total, "<name>/<a>-<b>": detached part, ...}``. The
total is the sum over ``pairs`` (ULIP aligns points with text and points with images and adds the
two terms).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch
from torch import nn

from ..errors import ConfigError

Pair = tuple[str, str]


def normalise_pairs(pairs: Iterable[Iterable[str]], loss_name: str) -> tuple[Pair, ...]:
    """``pairs`` as a tuple of 2-tuples of modality names; configs may give lists."""
    result = []
    for pair in pairs:
        pair = tuple(pair)
        if len(pair) != 2 or not all(isinstance(m, str) for m in pair) or pair[0] == pair[1]:
            raise ConfigError(f"{loss_name}: each of pairs must be two different modality names, got {pair!r}")
        result.append(pair)
    if not result:
        raise ConfigError(f"{loss_name}: pairs is empty")
    return tuple(result)


@contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Turn autocast off: logits of a B x B similarity are cheap, and bf16 logits shift the loss."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


class PairLoss(nn.Module):
    """Base of the losses that compute one term per (a, b) modality pair and add them."""

    #: short name used for the logged parts, e.g. "clip" -> "clip/image-text"
    name = "pair"
    #: whether the model must return per-token features (``outputs["tokens"]``)
    needs_tokens = False

    def __init__(self, pairs: Iterable[Iterable[str]] = (("image", "text"),)):
        super().__init__()
        self.pairs = normalise_pairs(pairs, type(self).__name__)

    def pair_loss(self, a: str, b: str, outputs: dict[str, Any], batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, outputs: dict[str, Any], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        key = "tokens" if self.needs_tokens else "embeds"
        available = outputs.get(key) or {}
        parts = {}
        total = None
        for a, b in self.pairs:
            for mod in (a, b):
                if available.get(mod) is None:
                    raise ConfigError(
                        f"{type(self).__name__}: pairs name modality '{mod}' but the model gave "
                        f"{key} for {sorted(k for k, v in available.items() if v is not None)}"
                    )
            term = self.pair_loss(a, b, outputs, batch)
            parts[f"{self.name}/{a}-{b}"] = term.detach()
            total = term if total is None else total + term
        return {"loss": total, **parts}


def token_mask(outputs: dict[str, Any], mod: str) -> torch.Tensor:
    """The (B, T) bool mask of real tokens of ``mod``; all True when the tower gave None."""
    tokens = outputs["tokens"][mod]
    mask = (outputs.get("token_mask") or {}).get(mod)
    if mask is None:
        return torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    return mask.to(device=tokens.device, dtype=torch.bool)
