"""Published Point-BERT / ULIP weights load into PointBERTTower and give the same outputs.

The reference below is written for this test from the published layout (Point-BERT's
`PointTransformer` as ULIP ships it: 1x1 Conv1d + BatchNorm1d encoder, `reduce_dim`, class token
and position, position MLP, `blocks.blocks.N` pre-norm blocks with a bias-free qkv, final norm,
output [class token, max over group tokens], position added before every block). Its grouping is
the textbook one: FPS from index 0, then the group_size nearest points by brute force.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from facetvlp.core.errors import CheckpointError
from facetvlp.domains.pointcloud.pointbert_weights import (
    convert_pointbert_state_dict,
    load_pointbert_weights,
    pointbert_config,
    read_checkpoint,
)
from facetvlp.domains.pointcloud.tower import PointBERTTower

torch.set_num_threads(1)
WIDTH, DEPTH, HEADS, GROUPS, GROUP_SIZE, ENC = 48, 3, 4, 16, 8, 40


def fps_reference(xyz: np.ndarray, m: int) -> np.ndarray:
    """Textbook FPS from index 0, float32 squared distances, ties to the lowest index."""
    chosen, nearest = [0], np.full(len(xyz), np.inf, dtype=np.float32)
    for _ in range(m - 1):
        diff = xyz - xyz[chosen[-1]]
        nearest = np.minimum(nearest, (diff * diff).sum(1))
        chosen.append(int(np.argmax(nearest)))
    return np.array(chosen)


class RefAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = ((q @ k.transpose(-1, -2)) * (c // self.heads) ** -0.5).softmax(-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), RefAttention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), RefMlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(RefBlock(WIDTH, HEADS) for _ in range(DEPTH))


class RefEncoder(nn.Module):
    def __init__(self, in_channels=3):
        super().__init__()
        self.first_conv = nn.Sequential(nn.Conv1d(in_channels, 128, 1), nn.BatchNorm1d(128),
                                        nn.ReLU(), nn.Conv1d(128, 256, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(),
                                         nn.Conv1d(512, ENC, 1))

    def forward(self, patches):  # (B, G, k, C)
        b, g, k, c = patches.shape
        f = self.first_conv(patches.reshape(b * g, k, c).transpose(1, 2))
        f = torch.cat([f.max(2, keepdim=True).values.expand(-1, -1, k), f], 1)
        return self.second_conv(f).max(2).values.view(b, g, ENC)


class RefPointTransformer(nn.Module):
    def __init__(self, in_channels=3):
        super().__init__()
        self.encoder = RefEncoder(in_channels)
        self.reduce_dim = nn.Linear(ENC, WIDTH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, WIDTH))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, WIDTH))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, WIDTH))
        self.blocks = RefBlocks()
        self.norm = nn.LayerNorm(WIDTH)
        self.cls_head_finetune = nn.Sequential(nn.Linear(2 * WIDTH, 10))  # a fine-tuning head

    def forward(self, points):
        patches, centres = [], []
        for cloud in points:
            xyz = cloud[:, :3]
            centre = xyz[torch.from_numpy(fps_reference(xyz.numpy(), GROUPS))]
            d2 = ((centre[:, None] - xyz[None]) ** 2).sum(-1)
            near = d2.argsort(dim=1, stable=True)[:, :GROUP_SIZE]
            patch = cloud[near]
            patches.append(torch.cat([patch[..., :3] - centre[:, None], patch[..., 3:]], -1))
            centres.append(centre)
        tokens = self.reduce_dim(self.encoder(torch.stack(patches)))
        b = len(points)
        x = torch.cat([self.cls_token.expand(b, -1, -1), tokens], 1)
        pos = torch.cat([self.cls_pos.expand(b, -1, -1), self.pos_embed(torch.stack(centres))], 1)
        for block in self.blocks.blocks:
            x = block(x + pos)
        x = self.norm(x)
        return torch.cat([x[:, 0], x[:, 1:].max(1).values], -1)


def _reference(in_channels=3) -> RefPointTransformer:
    torch.manual_seed(0)
    ref = RefPointTransformer(in_channels)
    with torch.no_grad():
        for module in ref.modules():  # non-trivial BatchNorm statistics and affine parameters
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return ref.eval()


def _clouds(channels=3) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    xyz = torch.nn.functional.normalize(torch.randn(2, 300, 3, generator=g), dim=-1)
    xyz = xyz * torch.rand(2, 300, 1, generator=g) ** 0.3
    return torch.cat([xyz, torch.rand(2, 300, channels - 3, generator=g)], -1)


def _ours_from(path, pool="cls", in_channels=3):
    converted, _ = convert_pointbert_state_dict(read_checkpoint(path))
    config = pointbert_config(converted)
    assert config == dict(width=WIDTH, depth=DEPTH, in_channels=in_channels,
                          encoder_hidden=(128, 256), encoder_style="pointbert",
                          encoder_width=ENC, qkv_bias=False, mlp_ratio=4.0)
    tower = PointBERTTower(heads=HEADS, num_groups=GROUPS, group_size=GROUP_SIZE, pool=pool,
                           **config)
    report = load_pointbert_weights(tower, path)
    return tower.eval(), report


def _same_output(tower, ref, points):
    with torch.no_grad():
        out = tower({"points": points})
        ours = torch.cat([out.pooled, out.tokens.max(1).values], -1)
        torch.testing.assert_close(ours, ref(points), rtol=1e-5, atol=2e-5)


def test_ulip_checkpoint_converts_to_identical_outputs(tmp_path):
    ref = _reference()
    # ULIP's file: DDP prefixes, the encoder under point_encoder., its projection and optimizer
    # state beside it, and the run's argparse Namespace
    state = {f"module.point_encoder.{k}": v for k, v in ref.state_dict().items()
             if not k.startswith("cls_head_finetune")}
    state["module.pc_projection"] = torch.randn(2 * WIDTH, 32)
    state["module.logit_scale"] = torch.tensor(2.6)
    path = tmp_path / "ulip_pointbert.pt"
    torch.save({"epoch": 3, "state_dict": state, "best_acc1": 60.1,
                "args": argparse.Namespace(model="ULIP_PointBERT", lr=3e-3)}, path)
    tower, report = _ours_from(path)
    assert sorted(report.unexpected) == ["logit_scale", "pc_projection"]
    assert report.missing == []
    assert set(report.loaded) == set(tower.state_dict())
    _same_output(tower, ref, _clouds())


def test_pointbert_checkpoint_with_head_and_pool_proj(tmp_path):
    ref = _reference()
    path = tmp_path / "pointbert_modelnet.pth"
    torch.save({"base_model": {f"module.{k}": v for k, v in ref.state_dict().items()},
                "epoch": 300}, path)
    tower, report = _ours_from(path, pool="cls+max")
    assert sorted(report.unexpected) == ["cls_head_finetune.0.bias", "cls_head_finetune.0.weight"]
    assert report.missing == ["pool_proj.weight", "pool_proj.bias"]  # our head, not theirs
    # the pool head is ours; the encoder and blocks are Point-BERT's: compare through pool="cls"
    cls_tower, _ = _ours_from(path)
    _same_output(cls_tower, ref, _clouds())


def test_colored_ulip2_layout_from_safetensors(tmp_path):
    ref = _reference(in_channels=6)  # ULIP-2's PointTransformer_Colored: xyz + rgb per point
    path = tmp_path / "ulip2.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    tower, report = _ours_from(path, in_channels=6)
    assert report.missing == [] and report.unexpected == ["cls_head_finetune.0.bias",
                                                          "cls_head_finetune.0.weight"]
    _same_output(tower, ref, _clouds(channels=6))


def test_wrong_layout_and_bad_files_raise(tmp_path):
    ref = _reference()
    path = tmp_path / "pb.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    wide = PointBERTTower(width=64, depth=DEPTH, heads=HEADS, encoder_style="pointbert",
                          encoder_width=ENC, qkv_bias=False)
    with pytest.raises(CheckpointError, match="shape"):
        load_pointbert_weights(wide, path)
    ours_layout = PointBERTTower(width=WIDTH, depth=DEPTH, heads=HEADS, encoder_width=ENC,
                                 qkv_bias=False)  # LayerNorm encoder: no BatchNorm buffers
    with pytest.raises(CheckpointError, match="layout"):
        load_pointbert_weights(ours_layout, path)
    report = load_pointbert_weights(ours_layout, path, strict=False)
    assert "encoder.first.1.running_mean" in report.unexpected
    assert report.missing == ["pool_proj.weight", "pool_proj.bias"]
    no_reduce = PointBERTTower(width=WIDTH, depth=DEPTH, heads=HEADS, encoder_style="pointbert",
                               qkv_bias=False, encoder_hidden=(128, 256))
    with pytest.raises(CheckpointError, match="encoder.second.2.bias has shape"):
        load_pointbert_weights(no_reduce, path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_pointbert_weights(ours_layout, tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_pointbert_weights(ours_layout, tmp_path / "absent.pt")


def test_tower_checkpoint_argument_loads_the_weights(tmp_path):
    ref = _reference()
    path = tmp_path / "pb.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    tower = PointBERTTower(width=WIDTH, depth=DEPTH, heads=HEADS, num_groups=GROUPS,
                           group_size=GROUP_SIZE, pool="cls", encoder_style="pointbert",
                           encoder_width=ENC, qkv_bias=False, checkpoint=str(path)).eval()
    _same_output(tower, ref, _clouds())


def test_pointbert_batchnorm_trains_like_conv1d_batchnorm():
    # in train mode the channels-last BatchNorm takes its statistics over every point of every
    # patch, as Point-BERT's BatchNorm1d after a 1x1 Conv1d does
    from facetvlp.domains.pointcloud.tower import PointBatchNorm

    x = torch.randn(2, 5, 7, 16)
    ours, theirs = PointBatchNorm(16), nn.BatchNorm1d(16)
    got = ours(x)
    want = theirs(x.reshape(10, 7, 16).transpose(1, 2)).transpose(1, 2).reshape(x.shape)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ours.running_var, theirs.running_var)


def test_masked_tokens_keep_their_own_positions():
    # blocks that are the identity (zero output projections): every output token is then
    # norm(token + its position), so a masked run must give a subset of the full run's rows
    tower = PointBERTTower(width=32, depth=1, heads=2, num_groups=12, group_size=8,
                           encoder_hidden=(16, 32), pool="cls").eval()
    with torch.no_grad():
        for block in tower.transformer:
            block.attn.proj.weight.zero_(), block.attn.proj.bias.zero_()
            block.mlp.fc2.weight.zero_(), block.mlp.fc2.bias.zero_()
        points = _clouds()
        full = tower({"points": points}).tokens
        torch.manual_seed(3)
        masked = tower({"points": points}, mask_ratio=0.5).tokens
    assert masked.shape == (2, 6, 32)
    for b in range(2):
        dist = torch.cdist(masked[b], full[b])
        assert (dist.min(1).values < 1e-5).all()
    # and a block sees the position: the output differs from norm(token) without it
    tokens, pos = tower.tokenize_points(points)
    assert not torch.allclose(full, tower.norm(tokens), atol=1e-3)
    torch.testing.assert_close(full, tower.norm(tokens + pos), rtol=1e-5, atol=1e-5)


def test_published_layout_names_are_all_mapped():
    ref = _reference()
    converted, unused = convert_pointbert_state_dict(dict(ref.state_dict()))
    tower = PointBERTTower(width=WIDTH, depth=DEPTH, heads=HEADS, pool="cls",
                           encoder_style="pointbert", encoder_width=ENC, qkv_bias=False)
    assert set(converted) == set(tower.state_dict())
    assert sorted(unused) == ["cls_head_finetune.0.bias", "cls_head_finetune.0.weight"]
    assert np.prod(converted["encoder.first.0.weight"].shape) == 128 * 3
