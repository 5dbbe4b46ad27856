"""Radiograph transforms on real DICOM pixels: aspect-preserving fit, boxes and masks that follow
the augmentation, no left-right flip unless asked, reproducible draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydicom.data import get_testdata_file

from facetvlp.core.registry import TRANSFORMS, build
from facetvlp.core.sample import check_sample
from facetvlp.domains.medical.dicom_read import read_dicom
from facetvlp.domains.medical.transforms import AspectResizePadd, RadiographAugmentd, radiograph_pipeline

WIDE = get_testdata_file("examples_overlay.dcm")  # real MR, 300 rows x 484 columns


def real_image() -> torch.Tensor:
    return torch.from_numpy(read_dicom(WIDE).array)[None]


def test_resize_keeps_aspect_pads_bottom_right_and_scales_boxes_and_masks():
    image = real_image()
    mask = torch.zeros(300, 484, dtype=torch.uint8)
    mask[100:200, 242:484] = 1
    out = AspectResizePadd(size=224)({"image": image, "mask": mask, "boxes": torch.tensor([[242.0, 100.0, 484.0, 200.0]])})
    scale = 224 / 484
    new_h = round(300 * scale)  # 139
    assert out["image"].shape == (1, 224, 224) and type(out["image"]) is torch.Tensor
    assert torch.all(out["image"][:, new_h:, :] == 0)  # padding only at the bottom
    # content agrees with an independent antialiased bilinear resize (torch) of the same pixels
    reference = F.interpolate(image[None], size=(new_h, 224), mode="bilinear", antialias=True, align_corners=False)[0]
    torch.testing.assert_close(out["image"][:, :new_h], reference)
    np.testing.assert_allclose(out["boxes"].numpy(), [[242 * scale, 100 * scale, 224.0, 200 * scale]], rtol=1e-5)
    ys, xs = torch.nonzero(out["mask"], as_tuple=True)
    assert out["mask"].dtype == torch.uint8
    assert abs(ys.min().item() - 100 * scale) <= 1 and abs(ys.max().item() + 1 - 200 * scale) <= 1
    assert abs(xs.min().item() - 242 * scale) <= 1 and xs.max().item() == 223


def test_shrinking_keeps_a_constant_image_constant_up_to_the_border():
    """One resizer for every medical dataset and transform: a flat image stays flat (MONAI's
    Resize(anti_aliasing=True) would darken the border pixels to about 0.76)."""
    out = AspectResizePadd(size=64)({"image": torch.ones(1, 512, 400)})["image"]
    content = round(400 * 64 / 512)
    torch.testing.assert_close(out[:, :, :content], torch.ones(1, 64, content))
    assert (out[:, :, content:] == 0).all()


def _left_bright() -> torch.Tensor:
    image = torch.zeros(1, 128, 128)
    image[:, :, :64] = 1.0
    return image


def test_no_left_right_flip_unless_asked():
    augment = RadiographAugmentd(seed=0)
    for _ in range(30):
        image = augment({"image": _left_bright()})["image"][0]
        assert image[:, :64].mean() > image[:, 64:].mean()
    flipping = RadiographAugmentd(flip_prob=1.0, rotate_deg=0, zoom=(1, 1), shift=0, seed=0)
    flipped = flipping({"image": _left_bright()})["image"][0]
    assert flipped[:, 64:].mean() > flipped[:, :64].mean()


@pytest.mark.parametrize("flip_prob", [0.0, 1.0])
def test_boxes_follow_the_geometric_augmentation(flip_prob):
    augment = RadiographAugmentd(rotate_deg=10, zoom=(0.9, 1.1), shift=0.05, flip_prob=flip_prob, seed=3)
    for _ in range(5):
        mask = torch.zeros(160, 200, dtype=torch.uint8)
        mask[40:90, 60:150] = 1
        out = augment({"image": mask[None].float(), "mask": mask, "boxes": torch.tensor([[60.0, 40.0, 150.0, 90.0]])})
        ys, xs = torch.nonzero(out["mask"], as_tuple=True)
        from_mask = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        # the box is the exact image of the rectangle's corners; the mask is sampled on the grid
        np.testing.assert_allclose(out["boxes"][0].numpy(), from_mask, atol=1.5)


def test_augmentation_is_reproducible_and_keeps_the_intensity_range():
    image = real_image()
    first = RadiographAugmentd(seed=7)({"image": image})["image"]
    second = RadiographAugmentd(seed=7)({"image": image})["image"]
    torch.testing.assert_close(first, second)
    assert first.min() >= image.min() - 1e-6 and first.max() <= image.max() + 1e-6
    assert not torch.equal(first, RadiographAugmentd(seed=8)({"image": image})["image"])


def test_pipeline_from_dicom_path_equals_the_steps_done_by_hand():
    sample = radiograph_pipeline(size=224, train=False, mean=0.5, std=0.25)({"image": WIDE})
    by_hand = AspectResizePadd(size=224)({"image": real_image()})["image"]
    torch.testing.assert_close(sample["image"], (by_hand - 0.5) / 0.25)
    check_sample({**sample, "text": "an MR slice"})
    assert sample["meta"]["modality"] == "MR"


def test_transforms_build_from_config_dicts():
    augment = build(TRANSFORMS, {"type": "RadiographAugmentd", "seed": 1}, where="test")
    fit = build(TRANSFORMS, {"type": "AspectResizePadd", "size": 64}, where="test")
    out = augment(fit({"image": real_image()}))
    assert out["image"].shape == (1, 64, 64)
