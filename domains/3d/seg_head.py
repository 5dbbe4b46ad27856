"""Per-point segmentation: a PointNet++ feature-propagation head on a point tower's group tokens.

:class:`PointFPHead` takes the tower's levels (:class:`.tower.PointLevel`: features on a set of
centres, shallow to deep) and walks back up: the deepest level's features are interpolated onto
the previous level's centres (inverse-distance weights of the 3 nearest, PointNet++'s feature
propagation), joined with that level's own features and mixed by a shared MLP; the last step
interpolates onto every input point, joined with the point's input channels, and a linear layer
gives K logits per point. Levels on the same centres (a Point-BERT tower's blocks) interpolate
exactly onto themselves (distance 0), which is Point-BERT's concatenation of block features.

:class:`PointSegmentationModel` keeps the task-model contract of ``facetvlp.core.heads``
(docs/architecture.md): a ``points`` tower under ``towers.points.*`` (so a pre-training
checkpoint loads by name), encoder modes, parameter groups with layer-wise LR decay, and
``{"seg_logits": (B, K, N)}`` outputs for ``SegmentationLoss`` / ``SegmentationEvaluator``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from facetvlp.core.errors import ConfigError
from facetvlp.core.heads.encoder_mode import keep_frozen_norm_stats, run_maybe_frozen, trainable_spec
from facetvlp.core.heads.param_groups import layerwise_param_groups
from facetvlp.core.registry import HEADS, MODELS, TOWERS, build

from .ops import gather_points, knn
from .tower import PointLevel, _mlp


def interpolate_features(target_xyz: torch.Tensor, source_xyz: torch.Tensor,
                         source_feats: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Features at ``target_xyz`` (B, N, 3) from ``source_feats`` (B, M, C) at ``source_xyz``
    (B, M, 3): inverse-squared-distance weights over the k nearest sources (PointNet++)."""
    k = min(k, source_xyz.shape[1])
    dist2, index = knn(target_xyz, source_xyz, k)
    weights = 1.0 / (dist2 + 1e-8)
    weights = weights / weights.sum(dim=-1, keepdim=True)
    # a target sitting on a source takes that source's features exactly (levels on shared centres)
    on_source = dist2[..., :1] <= 1e-12
    first_only = torch.zeros_like(weights)
    first_only[..., 0] = 1.0
    weights = torch.where(on_source, first_only, weights)
    neighbours = gather_points(source_feats, index)  # (B, N, k, C)
    return (neighbours * weights.unsqueeze(-1).to(neighbours.dtype)).sum(dim=2)


@HEADS.register_module()
class PointFPHead(nn.Module):
    """Feature propagation from tower levels to every input point (see the module docstring).

    Args (the model fills the first three): in_channels: channels of each level, shallow to
    deep; num_classes: K; point_channels: channels of the input points (xyz + extras) joined
    at the last step. hidden: width of each propagation MLP. dropout: before the classifier.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, point_channels: int = 3,
                 hidden: int = 128, dropout: float = 0.0, k: int = 3, strides: Any = None):
        super().__init__()
        if not in_channels:
            raise ConfigError("PointFPHead needs at least one level")
        self.k = k
        channels = list(in_channels)
        steps = []
        carried = channels[-1]
        for skip in reversed(channels[:-1]):
            steps.append(_mlp([carried + skip, hidden, hidden]))
            carried = hidden
        self.level_steps = nn.ModuleList(steps)
        self.point_step = _mlp([carried + point_channels, hidden, hidden])
        self.point_channels = point_channels
        self.norm = nn.LayerNorm(hidden)
        self.classifier = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, levels: Sequence[PointLevel], points: torch.Tensor) -> torch.Tensor:
        """levels: shallow to deep; points: (B, N, C) the tower's input -> (B, K, N) logits."""
        xyz, feats = levels[-1]
        for step, (finer_xyz, finer_feats) in zip(self.level_steps, reversed(levels[:-1])):
            carried = interpolate_features(finer_xyz, xyz, feats, self.k)
            xyz, feats = finer_xyz, step(torch.cat([carried, finer_feats], dim=-1))
        point_xyz = points[..., :3].contiguous()
        carried = interpolate_features(point_xyz, xyz, feats, self.k)
        joined = torch.cat([carried, points[..., :self.point_channels].to(carried.dtype)], dim=-1)
        return self.classifier(self.norm(self.point_step(joined))).transpose(1, 2)


@MODELS.register_module()
class PointSegmentationModel(nn.Module):
    """A point tower + a per-point head (default :class:`PointFPHead`).

    towers: ``{"points": tower cfg}``; levels: which tower levels feed the head (int n = the
    last n); encoder: "frozen" | "full" | "last_n=N".
    """

    tokenize = None  # no captions in segmentation batches

    def __init__(self, towers: Mapping[str, Mapping[str, Any]], num_classes: int,
                 head: Mapping[str, Any] | None = None, levels: int | Sequence[int] = 3,
                 encoder: str = "full"):
        super().__init__()
        if set(towers) != {"points"}:
            raise ConfigError(f"PointSegmentationModel needs exactly a 'points' tower, got {list(towers)}")
        self.towers = nn.ModuleDict({"points": build(TOWERS, towers["points"], where="model.towers.points")})
        tower = self.towers["points"]
        if not hasattr(tower, "forward_point_levels"):
            raise ConfigError(f"model.towers.points: {type(tower).__name__} gives no point levels")
        self.levels, self.num_classes = levels, int(num_classes)
        self.head = build(HEADS, dict(head or {"type": "PointFPHead"}), where="model.head",
                          in_channels=tower.point_level_channels(levels), num_classes=self.num_classes,
                          point_channels=tower.in_channels)
        tower.set_trainable(trainable_spec(encoder))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            keep_frozen_norm_stats(self.towers)
        return self

    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False) -> dict:
        if mask_ratio:
            raise ConfigError("engine.mask_ratio must be 0 for segmentation: every point is predicted")
        tower = self.towers["points"]
        levels = run_maybe_frozen(tower, tower.forward_point_levels, batch, self.levels)
        return {"seg_logits": self.head(levels, batch["points"])}

    @torch.no_grad()
    def predict(self, batch: dict) -> dict:
        logits = self.forward(batch)["seg_logits"]
        return {"seg_logits": logits, "seg": logits.argmax(1)}

    def param_groups(self, optim_cfg: Mapping) -> list[dict]:
        tower = self.towers["points"]
        return layerwise_param_groups(self, optim_cfg, {"towers.points.": (tower, tower.blocks())})

    def encoder_state_from(self, state: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, torch.Tensor]]:
        """The point tower of a pre-training model keeps its name (``towers.points.*``)."""
        return {k: (k, v) for k, v in state.items() if k.startswith("towers.points.")}
