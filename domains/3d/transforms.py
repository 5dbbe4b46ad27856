"""Geometry transforms on (N, C) point tensors whose first three columns are xyz.

Conventions: every cloud is turned z-up (ModelNet and LiDAR are z-up already, ShapeNet and most
scanned meshes are y-up); "rotation about the up axis" therefore always means about z. Normals,
when present, are rotated with the points. Random transforms take a `torch.Generator`, so a
dataset reproduces the same augmentation from `SampleDataset.sample_seed(index)`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from facetvlp.core.errors import ConfigError

# proper rotations (det = +1) that carry the named axis onto +z
_TO_Z_UP = {
    "z": torch.eye(3, dtype=torch.float64),
    "y": torch.tensor([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64),
    "x": torch.tensor([[0, 0, -1], [0, 1, 0], [1, 0, 0]], dtype=torch.float64),
}


def to_z_up(points: torch.Tensor, up: str = "z", normals_at: int | None = None) -> torch.Tensor:
    """Rotate a cloud whose up axis is `up` ("x", "y" or "z") so that up becomes +z."""
    if up not in _TO_Z_UP:
        raise ValueError(f"up must be one of {sorted(_TO_Z_UP)}, got {up!r}")
    if up == "z":
        return points
    return _rotate(points, _TO_Z_UP[up].to(points.dtype), normals_at)


def _rotate(points: torch.Tensor, rotation: torch.Tensor, normals_at: int | None) -> torch.Tensor:
    out = points.clone()
    out[:, :3] = points[:, :3] @ rotation.T
    if normals_at is not None:
        out[:, normals_at : normals_at + 3] = points[:, normals_at : normals_at + 3] @ rotation.T
    return out


def normalize_unit_sphere(points: torch.Tensor) -> torch.Tensor:
    """Centre on the centroid and scale so the farthest point lies on the unit sphere."""
    out = points.clone()
    xyz = points[:, :3] - points[:, :3].mean(dim=0)
    radius = xyz.norm(dim=1).max()
    out[:, :3] = xyz / radius if radius > 0 else xyz
    return out


def resample(points: torch.Tensor, n_points: int, generator: torch.Generator | None = None,
             method: str = "random") -> torch.Tensor:
    """Exactly `n_points` rows: a random subset ("random") or farthest point samples ("fps") of a
    larger cloud; a smaller cloud is padded with randomly repeated points."""
    count = len(points)
    if count == n_points:
        return points
    if count > n_points:
        if method == "fps":
            from .ops import farthest_point_sample

            return points[farthest_point_sample(points[:, :3], n_points)]
        if method != "random":
            raise ValueError(f"method must be 'random' or 'fps', got {method!r}")
        return points[torch.randperm(count, generator=generator)[:n_points]]
    extra = torch.randint(count, (n_points - count,), generator=generator)
    return torch.cat([points, points[extra]])


def channel_offsets(channels: Sequence[str]) -> dict[str, int]:
    """Column where each named channel starts, e.g. ("xyz", "rgb", "normals") -> normals at 6."""
    widths = {"xyz": 3, "rgb": 3, "normals": 3, "intensity": 1}
    offsets, col = {}, 0
    for name in channels:
        offsets[name] = col
        col += widths[name]
    return offsets


class PointAugment:
    """Training augmentation: random rotation about the up (z) axis, anisotropic scaling,
    clipped Gaussian jitter and random point dropout (dropped points are replaced by the first
    point, as in PointNet++, so N stays fixed)."""

    def __init__(
        self,
        rotate_up: bool = True,
        scale: tuple[float, float] | None = (0.8, 1.25),
        jitter_sigma: float = 0.01,
        jitter_clip: float = 0.05,
        dropout_max: float = 0.0,
        normals_at: int | None = None,
    ):
        if dropout_max < 0 or dropout_max >= 1:
            raise ConfigError(f"must be in [0, 1), got {dropout_max}", key="dropout_max")
        self.rotate_up = rotate_up
        self.scale = scale
        self.jitter_sigma = jitter_sigma
        self.jitter_clip = jitter_clip
        self.dropout_max = dropout_max
        self.normals_at = normals_at

    def __call__(self, points: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = points.clone()
        dtype = points.dtype
        if self.rotate_up:
            angle = float(torch.rand((), generator=generator)) * 2 * math.pi
            c, s = math.cos(angle), math.sin(angle)
            rotation = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=dtype)
            out = _rotate(out, rotation, self.normals_at)
        if self.scale is not None:
            low, high = self.scale
            factors = low + (high - low) * torch.rand(3, generator=generator, dtype=dtype)
            out[:, :3] = out[:, :3] * factors
            if self.normals_at is not None:
                # normals transform by the inverse transpose of a scaling, then renormalise
                n = out[:, self.normals_at : self.normals_at + 3] / factors
                out[:, self.normals_at : self.normals_at + 3] = torch.nn.functional.normalize(n, dim=1)
        if self.jitter_sigma > 0:
            noise = torch.randn(len(out), 3, generator=generator, dtype=dtype) * self.jitter_sigma
            out[:, :3] = out[:, :3] + noise.clamp(-self.jitter_clip, self.jitter_clip)
        if self.dropout_max > 0:
            ratio = float(torch.rand((), generator=generator)) * self.dropout_max
            dropped = torch.rand(len(out), generator=generator) < ratio
            out[dropped] = out[0].clone()
        return out

