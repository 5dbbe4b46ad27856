"""Point towers: a Point-BERT-style transformer and a small PointNet++ (SSG), in torch (their
farthest point sampling runs as numba kernels on CPU, see fps.py).

PointBERTTower: farthest point sampling picks G group centres, each centre's k nearest points
form a local patch, a mini-PointNet turns every patch into one token, a learned embedding of the
centre's xyz is its position, and a standard transformer (timm `Block`) mixes the tokens. It is
the point-cloud analogue of a ViT: patches are neighbourhoods instead of pixel squares. As in
Point-BERT / Point-MAE the position embedding is added again before every block
(`x = block(x + pos)`), the class token's included (`cls_pos`). With `encoder_style="pointbert"`,
`encoder_width=256` and `qkv_bias=False` the tower has Point-BERT's layout and loads published
Point-BERT / ULIP point-encoder weights (`checkpoint=`, see pointbert_weights.py).

PointNetPPTower: two set-abstraction levels (FPS + ball query + shared MLP + max pool) and a
global one; lighter, and a useful baseline.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import TOWERS
from facetvlp.core.towers import Tower, TowerOutput
from facetvlp.core.towers.vision_timm import random_patch_mask

from .ops import ball_query, farthest_point_sample, gather_points, group, knn


ENCODER_STYLES = ("layernorm", "pointbert")


class PointBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the channels of channels-last (..., C) features: the statistics of
    Point-BERT's BatchNorm after a 1x1 Conv1d on (B*G, C, k), i.e. over every point of every
    patch, with the same parameter and buffer names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _norm_act(channels: int, style: str) -> list[nn.Module]:
    if style == "pointbert":
        return [PointBatchNorm(channels), nn.ReLU()]
    return [nn.LayerNorm(channels), nn.GELU()]


def _mlp(channels: Sequence[int], style: str = "layernorm") -> nn.Sequential:
    """Shared per-point MLP. LayerNorm + GELU by default (contrastive batches are small and a
    frozen tower must behave the same in train and eval mode); "pointbert": BatchNorm + ReLU,
    Point-BERT's own, for its weights."""
    layers: list[nn.Module] = []
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Linear(c_in, c_out))
        if i < len(channels) - 2:
            layers += _norm_act(c_out, style)
    return nn.Sequential(*layers)


class MiniPointNet(nn.Module):
    """(B, G, k, C) point patches -> (B, G, width) tokens (Point-BERT's two-stage encoder:
    per-point MLP, patch max, the max joined back onto every point, MLP, patch max).

    "Joined back" is a concatenation followed by a linear layer in Point-BERT; here that layer
    is split into a per-point part and a per-patch part that is broadcast: the same function,
    without materialising the (B, G, k, 2h) concatenation (the largest tensor of the tower)."""

    def __init__(self, in_channels: int, width: int, hidden: Sequence[int] = (128, 256),
                 style: str = "layernorm"):
        super().__init__()
        if style not in ENCODER_STYLES:
            raise ValueError(f"encoder style must be one of {ENCODER_STYLES}, got {style!r}")
        h1, h2 = hidden
        self.first = _mlp([in_channels, h1, h2], style)
        self.point_part = nn.Linear(h2, 2 * h2)
        self.patch_part = nn.Linear(h2, 2 * h2, bias=False)
        self.second = nn.Sequential(*_norm_act(2 * h2, style), nn.Linear(2 * h2, width))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        feats = self.first(patches)
        pooled = feats.max(dim=2, keepdim=True).values
        joined = self.point_part(feats) + self.patch_part(pooled)
        return self.second(joined).max(dim=2).values


class PointLevel(NamedTuple):
    """Features on a set of points: what a point head consumes (PointNet++ feature propagation
    interpolates from these centres back to every input point)."""

    xyz: torch.Tensor  # (B, M, 3) centres
    feats: torch.Tensor  # (B, M, C)


def _points_of(batch) -> torch.Tensor:
    points = batch["points"] if isinstance(batch, dict) else batch
    if points.ndim != 3 or points.shape[-1] < 3:
        raise ValueError(f"points must be (B, N, C>=3), got {tuple(points.shape)}")
    return points


@TOWERS.register_module()
class PointBERTTower(Tower):
    modality = "points"

    def __init__(
        self,
        width: int = 256,
        depth: int = 6,
        heads: int = 4,
        num_groups: int = 64,
        group_size: int = 32,
        in_channels: int = 3,
        pool: str = "cls+max",
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        encoder_hidden: Sequence[int] = (128, 256),
        encoder_style: str = "layernorm",
        encoder_width: int | None = None,
        qkv_bias: bool = True,
        checkpoint: str | None = None,
    ):
        """encoder_width: the mini-PointNet's output width, mapped to `width` by a linear layer
        (Point-BERT's `reduce_dim`: 256 -> 384); None: the encoder outputs `width` directly.
        checkpoint: a Point-BERT / ULIP point-encoder weight file (pointbert_weights.py)."""
        super().__init__()
        if pool not in ("cls", "max", "cls+max"):
            raise ConfigError(f"must be 'cls', 'max' or 'cls+max', got {pool!r}", key="pool")
        self.width, self.pool = width, pool
        self.num_groups, self.group_size, self.in_channels = num_groups, group_size, in_channels
        self.encoder = MiniPointNet(in_channels, encoder_width or width, encoder_hidden,
                                    encoder_style)
        self.reduce_dim = nn.Linear(encoder_width, width) if encoder_width else None
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, width))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, width))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.transformer = nn.ModuleList(
            # torch's LayerNorm eps (1e-5) as in Point-BERT, not timm's ViT default (1e-6)
            Block(width, heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_path=r,
                  norm_layer=nn.LayerNorm)
            for r in rates
        )
        self.norm = nn.LayerNorm(width)
        self.pool_proj = nn.Linear(2 * width, width) if pool == "cls+max" else None
        self.grad_checkpointing = False
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.cls_pos, std=0.02)
        if checkpoint:
            from .pointbert_weights import load_pointbert_weights

            load_pointbert_weights(self, checkpoint)

    def tokenize_points(self, points: torch.Tensor, with_centres: bool = False):
        """(B, N, C) -> group tokens (B, G, W) and their position embeddings (B, G, W)
        (and the group centres (B, G, 3) with ``with_centres``)."""
        points = points[..., : self.in_channels]
        xyz = points[..., :3].contiguous()
        centre_idx = farthest_point_sample(xyz, min(self.num_groups, xyz.shape[1]))
        centres = gather_points(xyz, centre_idx)
        _, neighbour_idx = knn(centres, xyz, min(self.group_size, xyz.shape[1]))
        patches = group(points, centres, neighbour_idx, relative=True)
        tokens = self.encoder(patches)
        if self.reduce_dim is not None:
            tokens = self.reduce_dim(tokens)
        pos = self.pos_embed(centres)
        return (tokens, pos, centres) if with_centres else (tokens, pos)

    def _run_blocks(self, x: torch.Tensor, pos: torch.Tensor, upto: int | None = None,
                    keep: Sequence[int] = ()):
        kept = []
        for i, block in enumerate(self.transformer[:upto]):
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x + pos, use_reentrant=False)
            else:
                x = block(x + pos)
            if i in keep:
                kept.append(x)
        return x, kept

    def _sequence(self, points: torch.Tensor, mask_ratio: float, with_centres: bool = False):
        """(tokens, positions), each (B, 1 + kept groups, W), the class token first (and the
        group centres (B, G, 3) with ``with_centres``, for unmasked sequences)."""
        tokens, pos, centres = self.tokenize_points(points, with_centres=True)
        if mask_ratio > 0:
            # one draw for both, so each kept token keeps its own position
            both = random_patch_mask(torch.cat([tokens, pos], -1), mask_ratio, num_prefix=0)
            tokens, pos = both.split(self.width, dim=-1)
        batch = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(batch, -1, -1), tokens], dim=1)
        pos = torch.cat([self.cls_pos.expand(batch, -1, -1), pos], dim=1)
        return (x, pos, centres) if with_centres else (x, pos)

    def forward(self, batch, mask_ratio: float = 0.0) -> TowerOutput:
        x, pos = self._sequence(_points_of(batch), mask_ratio)
        x, _ = self._run_blocks(x, pos)
        x = self.norm(x)
        cls, tokens = x[:, 0], x[:, 1:]
        if self.pool == "cls":
            pooled = cls
        elif self.pool == "max":
            pooled = tokens.max(dim=1).values
        else:
            pooled = self.pool_proj(torch.cat([cls, tokens.max(dim=1).values], dim=-1))
        return TowerOutput(pooled, tokens, None)

    def forward_levels(self, batch, indices: Sequence[int] | int = 4) -> list[torch.Tensor]:
        """Group-token features (B, G, W) after the given blocks (an int n: the last n)."""
        depth = len(self.transformer)
        wanted = list(range(depth - indices, depth)) if isinstance(indices, int) else list(indices)
        wanted = [i % depth for i in wanted]
        x, pos = self._sequence(_points_of(batch), 0.0)
        _, kept = self._run_blocks(x, pos, upto=max(wanted) + 1, keep=wanted)
        return [k[:, 1:] for k in kept]

    def forward_point_levels(self, batch, indices: Sequence[int] | int = 3) -> list[PointLevel]:
        """Group tokens after the given blocks (an int n: the last n), each with the group
        centres (B, G, 3) they sit on - the input of a feature-propagation head."""
        wanted = self._block_indices(indices)
        x, pos, centres = self._sequence(_points_of(batch), 0.0, with_centres=True)
        _, kept = self._run_blocks(x, pos, upto=max(wanted) + 1, keep=wanted)
        return [PointLevel(centres, k[:, 1:]) for k in kept]

    def point_level_channels(self, indices: Sequence[int] | int = 3) -> list[int]:
        return [self.width] * len(self._block_indices(indices))

    def forward_point_tokens(self, batch) -> PointLevel:
        """The final, normalised group tokens that ``forward`` pools, on their centres."""
        x, pos, centres = self._sequence(_points_of(batch), 0.0, with_centres=True)
        x, _ = self._run_blocks(x, pos)
        return PointLevel(centres, self.norm(x)[:, 1:])

    def _block_indices(self, indices: Sequence[int] | int) -> list[int]:
        """Distinct block indices in depth order; asking for more levels than blocks is an error."""
        depth = len(self.transformer)
        wanted = list(range(depth - indices, depth)) if isinstance(indices, int) else list(indices)
        if not wanted or len(wanted) > depth or len({i % depth for i in wanted}) != len(wanted):
            raise ValueError(f"levels {indices!r}: need 1..{depth} distinct blocks of this {depth}-block tower")
        return sorted(i % depth for i in wanted)

    def blocks(self):
        return list(self.transformer)

    def final_norm(self):
        return self.norm

    def set_trainable(self, spec="all") -> None:
        super().set_trainable(spec)
        if self.pool_proj is not None and spec not in ("none", 0):
            self.pool_proj.requires_grad_(True)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.grad_checkpointing = enabled


class SetAbstraction(nn.Module):
    """FPS centres, ball-query neighbourhoods, shared MLP on (relative xyz, features), max."""

    def __init__(self, n_centres: int, radius: float, k: int, channels: Sequence[int]):
        super().__init__()
        self.n_centres, self.radius, self.k = n_centres, radius, k
        self.mlp = _mlp(channels)

    def forward(self, xyz: torch.Tensor, feats: torch.Tensor | None):
        centre_idx = farthest_point_sample(xyz, min(self.n_centres, xyz.shape[1]))
        centres = gather_points(xyz, centre_idx)
        index = ball_query(centres, xyz, self.radius, self.k)
        table = xyz if feats is None else torch.cat([xyz, feats], dim=-1)
        grouped = group(table, centres, index, relative=True)
        grouped = torch.cat([grouped[..., :3] / self.radius, grouped[..., 3:]], dim=-1)
        return centres, self.mlp(grouped).max(dim=2).values


@TOWERS.register_module()
class PointNetPPTower(Tower):
    """PointNet++ single-scale grouping: SA(centres[0], r1) -> SA(centres[1], r2) -> global MLP
    + max.

    Radii assume unit-sphere clouds (the datasets' normalisation)."""

    modality = "points"

    def __init__(self, width: int = 256, in_channels: int = 3, centres: Sequence[int] = (256, 64),
                 radii: Sequence[float] = (0.2, 0.4), k: Sequence[int] = (24, 48)):
        super().__init__()
        self.width, self.in_channels = width, in_channels
        extra = in_channels - 3
        self.sa1 = SetAbstraction(centres[0], radii[0], k[0], [3 + extra, 64, 64, 128])
        self.sa2 = SetAbstraction(centres[1], radii[1], k[1], [3 + 128, 128, 128, 256])
        self.global_mlp = _mlp([3 + 256, 256, 512, width])
        self.norm = nn.LayerNorm(width)

    def _levels(self, points: torch.Tensor, with_centres: bool = False):
        points = points[..., : self.in_channels]
        xyz = points[..., :3].contiguous()
        feats = points[..., 3:] if self.in_channels > 3 else None
        xyz1, f1 = self.sa1(xyz, feats)
        xyz2, f2 = self.sa2(xyz1, f1)
        tokens = self.global_mlp(torch.cat([xyz2, f2], dim=-1))
        if with_centres:
            return [PointLevel(xyz1, f1), PointLevel(xyz2, f2), PointLevel(xyz2, tokens)]
        return f1, f2, tokens

    def forward(self, batch, mask_ratio: float = 0.0) -> TowerOutput:
        _, _, tokens = self._levels(_points_of(batch))
        tokens = self.norm(tokens)
        return TowerOutput(tokens.max(dim=1).values, tokens, None)

    def forward_levels(self, batch, indices: Sequence[int] | int = 3) -> list[torch.Tensor]:
        """Per-centre features of SA1 (B, centres[0], 128), SA2 (B, centres[1], 256) and the
        global MLP (B, centres[1], width)."""
        levels = list(self._levels(_points_of(batch)))
        chosen = range(3 - indices, 3) if isinstance(indices, int) else indices
        return [levels[i] for i in chosen]

    def forward_point_levels(self, batch, indices: Sequence[int] | int = 3) -> list[PointLevel]:
        """SA1 (centres[0] points, 128 ch), SA2 (centres[1], 256) and the global MLP tokens
        (centres[1], width), each with its centres."""
        levels = self._levels(_points_of(batch), with_centres=True)
        chosen = range(3 - indices, 3) if isinstance(indices, int) else indices
        return [levels[i] for i in chosen]

    def forward_point_tokens(self, batch) -> PointLevel:
        """The final, normalised tokens that ``forward`` pools, on the SA2 centres."""
        last = self._levels(_points_of(batch), with_centres=True)[-1]
        return PointLevel(last.xyz, self.norm(last.feats))

    def point_level_channels(self, indices: Sequence[int] | int = 3) -> list[int]:
        channels = [128, 256, self.width]
        chosen = range(3 - indices, 3) if isinstance(indices, int) else indices
        return [channels[i] for i in chosen]

    def blocks(self):
        return [self.sa1, self.sa2, self.global_mlp]

    def final_norm(self):
        return self.norm

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        if enabled:
            raise NotImplementedError("PointNetPPTower is small; it has no gradient checkpointing")
