"""Point towers honour the core Tower interface and compute what they claim."""

from __future__ import annotations

import pytest
import torch

from facetvlp.core.registry import TOWERS, build
from facetvlp.core.towers import Tower
from facetvlp.domains.pointcloud.tower import MiniPointNet, PointBERTTower, PointNetPPTower

torch.set_num_threads(1)
SMALL = dict(width=32, depth=2, heads=2, num_groups=8, group_size=8, encoder_hidden=(16, 32))


def _points(b=2, n=256, c=3, seed=0):
    return torch.rand(b, n, c, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_registered_and_interface():
    tower = build(TOWERS, dict(type="PointBERTTower", **SMALL))
    assert isinstance(tower, Tower) and tower.modality == "points" and tower.width == 32
    out = tower({"points": _points()})
    assert out.pooled.shape == (2, 32) and out.tokens.shape == (2, 8, 32)


def test_pointbert_is_permutation_invariant():
    tower = PointBERTTower(**SMALL).eval()
    pts = _points()
    # FPS starts at index 0, so keep point 0 first and shuffle the rest
    perm = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(255) + 1])
    with torch.no_grad():
        a = tower({"points": pts}).pooled
        b = tower({"points": pts[:, perm]}).pooled
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_mini_pointnet_split_layer_equals_concatenation():
    enc = MiniPointNet(3, 24, hidden=(8, 16))
    patches = torch.rand(2, 5, 7, 3)
    feats = enc.first(patches)
    pooled = feats.max(dim=2, keepdim=True).values
    # the textbook form: concatenate [patch max, point feature] and apply one linear layer
    weight = torch.cat([enc.patch_part.weight, enc.point_part.weight], dim=1)
    joined = torch.cat([pooled.expand_as(feats), feats], -1) @ weight.T + enc.point_part.bias
    expected = enc.second(joined).max(dim=2).values
    torch.testing.assert_close(enc(patches), expected)


def test_mask_ratio_drops_group_tokens():
    tower = PointBERTTower(**SMALL)
    out = tower({"points": _points()}, mask_ratio=0.5)
    assert out.tokens.shape == (2, 4, 32)


def test_forward_levels_and_trainable():
    tower = PointBERTTower(**SMALL)
    levels = tower.forward_levels({"points": _points()}, indices=2)
    assert [tuple(x.shape) for x in levels] == [(2, 8, 32), (2, 8, 32)]
    tower.set_trainable(1)
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert any(n.startswith("transformer.1.") for n in trainable)
    assert not any(n.startswith(("transformer.0.", "encoder.")) for n in trainable)
    tower.set_trainable("none")
    assert tower.frozen


def test_grad_checkpointing_same_gradients():
    pts = _points()
    torch.manual_seed(0)
    a = PointBERTTower(**SMALL)
    b = PointBERTTower(**SMALL)
    b.load_state_dict(a.state_dict())
    b.set_grad_checkpointing(True)
    a({"points": pts}).pooled.sum().backward()
    b({"points": pts}).pooled.sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


def test_extra_channels_are_used():
    tower = PointBERTTower(in_channels=6, **SMALL).eval()
    pts = _points(c=6)
    other = pts.clone()
    other[..., 3:] = 0
    with torch.no_grad():
        assert not torch.allclose(tower({"points": pts}).pooled, tower({"points": other}).pooled)


def test_pointnetpp_shapes_and_backward():
    tower = PointNetPPTower(width=32, centres=(64, 16), k=(8, 16))
    out = tower({"points": _points()})
    assert out.pooled.shape == (2, 32) and out.tokens.shape == (2, 16, 32)
    out.pooled.sum().backward()
    assert all(p.grad is not None for p in tower.parameters())
    levels = tower.forward_levels({"points": _points()}, indices=3)
    assert [x.shape[1] for x in levels] == [64, 16, 16]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pointbert_on_cuda_matches_cpu():
    tower = PointBERTTower(**SMALL).eval()
    pts = _points()
    with torch.no_grad():
        cpu = tower({"points": pts}).pooled
        gpu = tower.cuda()({"points": pts.cuda()}).pooled.cpu()
    torch.testing.assert_close(cpu, gpu, rtol=1e-3, atol=1e-4)
