"""CombinedLoss: a weighted sum of losses, each part reported on its own.

``CombinedLoss(losses=[dict(type="CLIPLoss"), dict(type="ITMLoss", embed_dim=256)],
weights=[1.0, 0.5])`` returns ``{"loss": 1.0 * clip + 0.5 * itm, "clip": clip, "itm": itm,
"clip/image-text": ..., "itm/image-text": ...}``; the unweighted parts go to the logs so that
curves stay comparable when weights change.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import LOSSES, build


@LOSSES.register_module()
class CombinedLoss(nn.Module):
    name = "combined"
    needs_tokens = False
    needs_mlm = False

    def __init__(self, losses: Sequence[Mapping[str, Any]], weights: Sequence[float] | None = None):
        super().__init__()
        if not losses:
            raise ConfigError("CombinedLoss: losses is empty")
        weights = [1.0] * len(losses) if weights is None else [float(w) for w in weights]
        if len(weights) != len(losses):
            raise ConfigError(f"CombinedLoss: {len(losses)} losses but {len(weights)} weights")
        self.losses = nn.ModuleList(
            build(LOSSES, cfg, where=f"losses[{i}]") for i, cfg in enumerate(losses)
        )
        self.weights = weights
        self.needs_tokens = any(getattr(loss, "needs_tokens", False) for loss in self.losses)
        self.needs_mlm = any(getattr(loss, "needs_mlm", False) for loss in self.losses)
        names = [getattr(loss, "name", type(loss).__name__) for loss in self.losses]
        # The same loss twice (e.g. CLIP on two pairs with different weights) gets its index.
        self.part_names = [n if names.count(n) == 1 else f"{n}{i}" for i, n in enumerate(names)]

    def forward(self, outputs: dict[str, Any], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        total, parts = None, {}
        for name, weight, loss in zip(self.part_names, self.weights, self.losses):
            result = loss(outputs, batch)
            term = weight * result["loss"]
            total = term if total is None else total + term
            parts[name] = result["loss"].detach()
            for key, value in result.items():
                if key != "loss":
                    parts[key if name == getattr(loss, "name", None) else f"{name}:{key}"] = value
        return {"loss": total, **parts}
