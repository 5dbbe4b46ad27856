"""Geometry transforms against closed-form expectations."""

from __future__ import annotations

import math

import pytest
import torch

from facetvlp.domains.pointcloud.transforms import (
    PointAugment,
    normalize_unit_sphere,
    resample,
    to_z_up,
)


def test_unit_sphere():
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(500, 6, generator=g, dtype=torch.float64) * 7 + 100
    out = normalize_unit_sphere(pts)
    assert torch.allclose(out[:, :3].mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert math.isclose(float(out[:, :3].norm(dim=1).max()), 1.0, rel_tol=1e-12)
    assert torch.equal(out[:, 3:], pts[:, 3:])  # other channels untouched


@pytest.mark.parametrize("up,axis", [("y", 1), ("x", 0), ("z", 2)])
def test_to_z_up_moves_the_up_axis_and_keeps_handedness(up, axis):
    unit = torch.zeros(1, 6, dtype=torch.float64)
    unit[0, axis] = 1.0
    unit[0, 3 + axis] = 1.0  # a normal along the up axis too
    out = to_z_up(unit, up, normals_at=3)
    assert torch.allclose(out[0, :3], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(out[0, 3:], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    # a proper rotation: x cross y still equals z after the transform
    basis = to_z_up(torch.eye(3, dtype=torch.float64), up)
    assert torch.allclose(torch.linalg.cross(basis[0], basis[1]), basis[2])


def test_augment_rotation_about_up_keeps_heights_and_radii():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(300, 3, generator=g, dtype=torch.float64)
    aug = PointAugment(rotate_up=True, scale=None, jitter_sigma=0.0)
    out = aug(pts, torch.Generator().manual_seed(5))
    assert torch.allclose(out[:, 2], pts[:, 2])
    assert torch.allclose(out[:, :2].norm(dim=1), pts[:, :2].norm(dim=1))
    assert not torch.allclose(out, pts)


def test_augment_is_seeded_and_bounded():
    pts = torch.zeros(1000, 3)
    aug = PointAugment(rotate_up=False, scale=None, jitter_sigma=0.02, jitter_clip=0.03)
    a = aug(pts, torch.Generator().manual_seed(3))
    b = aug(pts, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.abs().max() <= 0.03 and a.std() > 0.01


def test_augment_scaling_and_normals():
    pts = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]])
    aug = PointAugment(rotate_up=False, scale=(2.0, 2.0), jitter_sigma=0.0, normals_at=3)
    out = aug(pts, torch.Generator().manual_seed(0))
    assert torch.allclose(out[0, :3], torch.tensor([2.0, 2.0, 2.0]))
    assert torch.allclose(out[0, 3:], torch.tensor([1.0, 0.0, 0.0]))


def test_dropout_keeps_size_and_repeats_first_point():
    pts = torch.arange(3000, dtype=torch.float32).view(1000, 3)
    aug = PointAugment(rotate_up=False, scale=None, jitter_sigma=0.0, dropout_max=0.9)
    out = aug(pts, torch.Generator().manual_seed(11))
    assert out.shape == pts.shape
    changed = (out != pts).any(dim=1)
    assert changed.any()
    assert torch.equal(out[changed], pts[0].expand(int(changed.sum()), 3))


def test_resample_sizes():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(100, 3, generator=g)
    down = resample(pts, 40, g)
    assert down.shape == (40, 3) and len({tuple(r.tolist()) for r in down}) == 40
    up = resample(pts, 150, g)
    assert up.shape == (150, 3) and torch.equal(up[:100], pts)
    fps = resample(pts, 10, g, method="fps")
    assert torch.equal(fps[0], pts[0])  # FPS starts at index 0
