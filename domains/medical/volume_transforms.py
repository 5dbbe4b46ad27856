"""Training patches from CT/MR volumes, registered in TRANSFORMS for configs.

:class:`VolumePatchd` pads a volume to at least the patch size and cuts one patch at random, centred
on a labelled voxel with probability ``pos_fraction`` (MONAI's ``RandCropByPosNegLabeld``): small
organs would otherwise be missing from most patches of a large scan. Prediction needs no patches:
the volume model slides its window over the whole scan.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

from monai.transforms import Randomizable, RandCropByPosNegLabeld, SpatialPadd

from facetvlp.core.registry import TRANSFORMS, register


@register(TRANSFORMS)
class VolumePatchd(Randomizable):
    """``image`` (C, D, H, W) and ``seg`` (D, H, W) -> one aligned patch of ``size`` (D, H, W)."""

    def __init__(self, size: Sequence[int], pos_fraction: float = 0.5, seed: int | None = None):
        self.size = tuple(int(s) for s in size)
        if len(self.size) != 3:
            raise ValueError(f"VolumePatchd: size must be (D, H, W), got {size}")
        self.pad = SpatialPadd(keys=["image", "seg"], spatial_size=self.size)
        self.crop = RandCropByPosNegLabeld(keys=["image", "seg"], label_key="seg", spatial_size=self.size,
                                           pos=float(pos_fraction), neg=1.0 - float(pos_fraction),
                                           num_samples=1, allow_smaller=False)
        if seed is not None:
            self.set_random_state(seed)

    def set_random_state(self, seed: int | None = None, state: Any = None) -> "VolumePatchd":
        super().set_random_state(seed, state)
        self.crop.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:  # the MONAI crop draws its own
        pass

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        sample = dict(data)
        seg = sample["seg"]
        padded = self.pad({"image": sample["image"], "seg": seg[None] if seg.ndim == 3 else seg})
        patch = self.crop(padded)[0]
        sample["image"], sample["seg"] = patch["image"], patch["seg"][0]
        return sample
