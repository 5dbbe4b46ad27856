"""VolumePatchd: aligned, reproducible training patches that find small structures."""

from __future__ import annotations

import torch

from facetvlp.domains.medical.volume_transforms import VolumePatchd


def numbered_volume(shape=(12, 40, 50)):
    image = torch.arange(torch.Size(shape).numel(), dtype=torch.float32).reshape(1, *shape)
    return image, (image[0].long() % 7)  # seg is a function of the voxel's number


def test_patch_keeps_image_and_seg_aligned_and_pads_small_volumes():
    image, seg = numbered_volume()
    patch = VolumePatchd(size=(16, 32, 32), pos_fraction=0.0, seed=3)({"image": image, "seg": seg})
    assert patch["image"].shape == (1, 16, 32, 32) and patch["seg"].shape == (16, 32, 32)
    real = patch["image"][0] > 0  # padding (depth 12 -> 16) is zero in the image ...
    assert torch.equal(patch["seg"][real], patch["image"][0][real].long() % 7)
    assert int(real.any(dim=(1, 2)).sum()) == 12  # ... and every real slice is in the patch


def test_positive_patches_contain_a_single_labelled_voxel_and_seeds_repeat():
    image = torch.rand(1, 20, 96, 96)
    seg = torch.zeros(20, 96, 96, dtype=torch.long)
    seg[10, 70, 20] = 3
    crop = VolumePatchd(size=(8, 24, 24), pos_fraction=1.0)
    first = [crop.set_random_state(seed)({"image": image, "seg": seg}) for seed in range(5)]
    assert all(int((p["seg"] == 3).sum()) == 1 for p in first)
    again = [crop.set_random_state(seed)({"image": image, "seg": seg}) for seed in range(5)]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(first, again))
    negative = VolumePatchd(size=(8, 24, 24), pos_fraction=0.0)
    # background-centred patches rarely hit the one voxel (a patch covers 0.6 % of the volume)
    hits = sum(int((negative.set_random_state(s)({"image": image, "seg": seg})["seg"] == 3).sum())
               for s in range(20))
    assert hits <= 2
