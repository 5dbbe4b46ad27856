"""Dense features of vision towers: multi-level maps with their strides (checked against timm's
own feature_info), other input sizes than the tower was built for, the ViTDet pyramid, and
projected patch embeddings in the joint space."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

import facetvlp.core  # noqa: F401
from facetvlp.core.heads.pyramid import SimpleFeaturePyramid
from facetvlp.core.model import ContrastiveModel
from facetvlp.core.towers import TimmVisionTower


@pytest.mark.parametrize("name, size, levels", [("vit_tiny_patch16_224", 32, 4), ("resnet18", 64, 4),
                                                ("resnet18", 64, [1, 3])])
def test_level_specs_follow_timm_feature_info_and_the_maps(name, size, levels):
    kwargs = {"image_size": size, "depth": 4} if name.startswith("vit") else {}
    tower = TimmVisionTower(name, **kwargs).eval()
    info = tower.model.feature_info
    taken = list(range(len(info)))[-levels:] if isinstance(levels, int) else levels
    specs = tower.level_specs(levels)
    assert [(s.channels, s.stride) for s in specs] == [(info[i]["num_chs"], info[i]["reduction"]) for i in taken]
    with torch.no_grad():
        maps = tower.forward_levels({"image": torch.randn(2, 3, size, size)}, levels)
    assert [tuple(m.shape) for m in maps] == [(2, s.channels, size // s.stride, size // s.stride) for s in specs]


def test_a_vit_built_at_32_px_runs_at_48_px_like_one_built_at_48_with_resampled_positions():
    torch.manual_seed(0)
    small = TimmVisionTower("vit_tiny_patch16_224", image_size=32, depth=2, dynamic_img_size=True).eval()
    large = TimmVisionTower("vit_tiny_patch16_224", image_size=48, depth=2).eval()
    state = dict(small.model.state_dict())
    # the reference: timm's own bicubic resampling of the 2x2 grid to 3x3, in a fixed-size model
    state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], new_size=[3, 3], old_size=[2, 2],
                                                num_prefix_tokens=1)
    large.model.load_state_dict(state)
    images = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        got = small.forward_dense({"image": images})
        want = large.forward_dense({"image": images})
        levels = small.forward_levels({"image": images}, 2)
    assert got.shape == (2, 192, 3, 3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert [tuple(m.shape) for m in levels] == [(2, 192, 3, 3)] * 2


def test_simple_feature_pyramid_gives_four_strides_from_one_map():
    pyramid = SimpleFeaturePyramid(channels=32, stride=16)
    maps = pyramid(torch.randn(2, 32, 6, 6))
    assert [(s.channels, s.stride) for s in pyramid.specs] == [(8, 4), (16, 8), (32, 16), (32, 32)]
    assert [tuple(m.shape) for m in maps] == [(2, 8, 24, 24), (2, 16, 12, 12), (2, 32, 6, 6), (2, 32, 3, 3)]


@pytest.mark.parametrize("name, pool", [("vit_tiny_patch16_224", "avg"), ("resnet18", None)])
def test_patch_embeddings_are_the_projected_normalised_tokens(name, pool):
    torch.manual_seed(0)
    tower = dict(type="TimmVisionTower", name=name)
    if pool:
        # fc_norm=False: the final norm acts on the tokens before pooling, as in CLIP-style towers
        tower.update(pool=pool, image_size=32, depth=2, fc_norm=False)
    model = ContrastiveModel(towers={"image": tower}, embed_dim=24).eval()
    images = torch.randn(2, 3, 64 if name == "resnet18" else 32, 64 if name == "resnet18" else 32)
    with torch.no_grad():
        dense = model.patch_embeddings({"image": images})
        out = model.towers["image"]({"image": images})
        # reference: the tower's tokens through the projection, normalised, laid on the grid
        want = F.normalize(model.projections["image"](out.tokens), dim=-1)
        pooled = model.encode("image", {"image": images})
    b, d, h, w = dense.shape
    assert (b, d) == (2, 24)
    torch.testing.assert_close(dense.flatten(2).transpose(1, 2), want)
    torch.testing.assert_close(dense.norm(dim=1), torch.ones(b, h, w))
    if pool == "avg":  # a linear projection commutes with the average: the pooled embedding is
        # the normalised mean of the unnormalised patch projections
        mean = model.projections["image"](out.tokens).mean(1)
        torch.testing.assert_close(F.normalize(mean, dim=-1), pooled, atol=1e-5, rtol=1e-4)
