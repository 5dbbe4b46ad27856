"""The 3D volume path: MONAI UNETR / SwinUNETR / UNet under the task-model contract, UNETR's
transformer started from a VLP ViT tower, and sliding-window prediction."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import facetvlp.core  # noqa: F401
from facetvlp.core.engine.checkpoint import save_checkpoint
from facetvlp.core.errors import CheckpointError
from facetvlp.core.heads import VolumeSegmentationModel, load_encoder
from facetvlp.core.heads.loss import SegmentationLoss
from facetvlp.core.model import ContrastiveModel

# UNETR's ViT has 12 blocks; these widths are ViT-Tiny's, so a timm vit_tiny tower maps onto it
UNETR = dict(net="UNETR", in_channels=1, num_classes=3, roi_size=(32, 32, 32),
             net_options=dict(feature_size=8, hidden_size=192, mlp_dim=768, num_heads=3))


def unetr_batch():
    return {"image": torch.randn(2, 1, 32, 32, 32), "seg": torch.randint(0, 3, (2, 32, 32, 32))}


@pytest.mark.parametrize("cfg", [UNETR, dict(net="UNet", num_classes=3, roi_size=(32, 32, 32)),
                                 # batch norm: at 32^3 Swin's bottleneck is 1 voxel, too few
                                 # for the default instance norm
                                 dict(net="SwinUNETR", num_classes=3, roi_size=(32, 32, 32),
                                      net_options=dict(feature_size=12, depths=(1, 1, 1, 1),
                                                       norm_name="batch"))])
def test_volume_networks_train_and_predict(cfg):
    torch.manual_seed(0)
    model = VolumeSegmentationModel(**cfg)
    batch = unetr_batch()
    outputs = model(batch)
    assert outputs["seg_logits"].shape == (2, 3, 32, 32, 32)
    SegmentationLoss()(outputs, batch)["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_predict_slides_a_window_over_larger_volumes_and_matches_the_net_inside_one():
    torch.manual_seed(0)
    model = VolumeSegmentationModel(**UNETR).eval()
    volume = torch.randn(1, 1, 32, 32, 32)
    inside = model.predict({"image": volume})
    torch.testing.assert_close(inside["seg_logits"], model.net(volume))
    large = model.predict({"image": torch.randn(1, 1, 48, 40, 32)})
    assert large["seg_logits"].shape == (1, 3, 48, 40, 32)
    assert large["seg"].shape == (1, 48, 40, 32)


def test_frozen_encoder_trains_only_the_decoder():
    model = VolumeSegmentationModel(**UNETR, encoder="frozen")
    batch = unetr_batch()
    SegmentationLoss()(model(batch), batch)["loss"].backward()
    assert all(p.grad is None for p in model.net.vit.parameters())
    assert model.net.out.conv.conv.weight.grad is not None
    last2 = VolumeSegmentationModel(**UNETR, encoder="last_n=2")
    trainable = {n for n, p in last2.net.vit.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("blocks.10.", "blocks.11.", "norm.")) for n in trainable)


@pytest.fixture()
def vlp_checkpoint(tmp_path):
    torch.manual_seed(1)
    vlp = ContrastiveModel(towers={"image": dict(type="TimmVisionTower", name="vit_tiny_patch16_224",
                                                 image_size=64)}, embed_dim=32)
    path = tmp_path / "vlp.safetensors"
    save_checkpoint(path, {f"model.model.{k}": v for k, v in vlp.state_dict().items()}, {"step": 5})
    return vlp, path


def test_unetr_transformer_starts_from_the_vlp_vit(vlp_checkpoint):
    vlp, path = vlp_checkpoint
    model = VolumeSegmentationModel(**UNETR).eval()
    report = load_encoder(model, path)
    vit = vlp.towers["image"].model.eval()
    # 12 blocks x 12 tensors + final norm 2 + patch embedding 2
    assert len(report.loaded) == 12 * 12 + 2 + 2 and not report.mismatched
    assert "towers.image.model.pos_embed" in report.unexpected  # a 2D grid: 3D positions start fresh
    assert any(k.startswith("net.decoder") for k in report.missing)
    # the same tokens through a block give the same output (LayerNorm eps 1e-5 vs timm's 1e-6)
    tokens = torch.randn(2, 10, 192)
    with torch.no_grad():
        torch.testing.assert_close(model.net.vit.blocks[3](tokens), vit.blocks[3](tokens), atol=2e-4, rtol=1e-3)
        # the inflated patch embedding sees a depth-constant volume as timm sees its slice
        # (timm's grey-to-RGB rule: one channel is the RGB channels' sum)
        slice_ = torch.randn(1, 1, 16, 16)
        volume = slice_.unsqueeze(2).expand(1, 1, 16, 16, 16)
        got = model.net.vit.patch_embedding.patch_embeddings(volume).flatten()
        want = vit.patch_embed.proj(slice_.expand(1, 3, 16, 16)).flatten()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_swinunetr_takes_nothing_from_a_2d_vit_and_says_so(vlp_checkpoint):
    _, path = vlp_checkpoint
    model = VolumeSegmentationModel(net="SwinUNETR", num_classes=2, roi_size=(32, 32, 32),
                                    net_options=dict(feature_size=12, depths=(1, 1, 1, 1)))
    with pytest.raises(CheckpointError, match="nothing of the encoder matched"):
        load_encoder(model, path)


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not a facetvlp checkpoint"):
        load_encoder(VolumeSegmentationModel(**UNETR), tmp_path / "plain.safetensors")


def test_an_option_the_monai_network_does_not_take_is_a_config_error():
    from facetvlp.core.errors import ConfigError
    from facetvlp.core.registry import MODELS, build

    with pytest.raises(ConfigError, match=r"model\.net_options\.chanels.*did you mean 'channels'"):
        build(MODELS, dict(type="VolumeSegmentationModel", net="UNet", net_options=dict(chanels=(8, 16))),
              where="model")
