"""MONAI dictionary transforms for radiographs, registered in TRANSFORMS for configs.

* :class:`LoadDicomd` - a DICOM path in ``sample["image"]`` -> (C, H, W) float32 in [0, 1] + safe meta.
* :func:`fit_square` / :class:`AspectResizePadd` - longest side to ``size`` with the aspect ratio
  kept, then padded at the bottom/right to a square, so that boxes only scale (they are scaled
  with the image). Every medical dataset fits its images with it.
* ``NormalizeIntensityd`` - MONAI's, registered as is: ``subtrahend``/``divisor`` = mean/std.
* :class:`RadiographAugmentd` - light augmentation: small rotation, zoom and shift, gamma and gain.
  No left-right flip unless ``flip_prob > 0``: a flipped chest film puts the heart on the right
  (situs inversus), which is a finding, not a nuisance. Boxes and masks follow the image.

``radiograph_pipeline(...)`` composes them for users who build their own MONAI datasets.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import (
    Affine,
    Compose,
    MapTransform,
    NormalizeIntensityd,
    Randomizable,
)

from facetvlp.core.registry import TRANSFORMS, register

from .dicom_read import load_dicom_sample

register(TRANSFORMS)(NormalizeIntensityd)


@register(TRANSFORMS)
class LoadDicomd(MapTransform):
    """Replace a DICOM path under ``keys`` by its (C, H, W) image and merge its safe meta."""

    def __init__(self, keys: Sequence[Hashable] = ("image",), window="header", percentiles=(0.5, 99.5), channels: int | None = None):
        super().__init__(keys)
        self.read_kwargs = {"window": window, "percentiles": tuple(percentiles)}
        self.channels = channels  # None keeps the file's; 1 averages colour; 3 repeats grey

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        sample = dict(data)
        for key in self.key_iterator(sample):
            loaded = load_dicom_sample(sample[key], **self.read_kwargs)
            image = loaded["image"]
            if self.channels == 1 and image.shape[0] == 3:
                image = image.mean(0, keepdim=True)
            elif self.channels == 3 and image.shape[0] == 1:
                image = image.expand(3, -1, -1).contiguous()
            sample[key] = image
            sample["meta"] = {**sample.get("meta", {}), **loaded["meta"]}
        return sample


def fit_square(image: torch.Tensor, size: int, mode: str = "bilinear",
               pad_value: float = 0.0) -> tuple[torch.Tensor, float]:
    """(C, H, W) -> (C, size, size): longest side to ``size`` with the aspect ratio kept, then
    padded at the bottom/right, so that boxes only scale. Returns the image and the scale.

    Shrinking filters with torch's antialiased bilinear (PIL's triangle filter). MONAI's
    ``Resize(anti_aliasing=True)`` smooths with zero padding first, which darkens the border: a
    constant 512 px image shrunk to 64 px keeps 0.76 of its value in the corner pixels.
    """
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    image = _plain(image).float()
    if (new_h, new_w) != (height, width):
        kwargs = {"antialias": True, "align_corners": False} if mode == "bilinear" else {}
        image = F.interpolate(image[None], size=(new_h, new_w), mode=mode, **kwargs)[0]
    return F.pad(image, (0, size - new_w, 0, size - new_h), value=pad_value), scale


@register(TRANSFORMS)
class AspectResizePadd(MapTransform):
    """:func:`fit_square` as a dictionary transform.

    ``mask_keys`` are resized with nearest neighbour; ``boxes`` (x0, y0, x1, y1 pixels) are scaled.
    """

    def __init__(self, keys: Sequence[Hashable] = ("image",), size: int = 224, mask_keys: Sequence[Hashable] = ("mask",),
                 pad_value: float = 0.0, allow_missing_keys: bool = True):
        super().__init__(keys, allow_missing_keys)
        self.size, self.mask_keys, self.pad_value = int(size), tuple(mask_keys), float(pad_value)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        sample = dict(data)
        scale = None
        for key in self.key_iterator(sample):
            sample[key], scale = fit_square(sample[key], self.size, "bilinear", self.pad_value)
        for key in self.mask_keys:
            if key in sample:
                mask = sample[key]
                as_channel = mask[None] if mask.ndim == 2 else mask
                fitted, _ = fit_square(as_channel.float(), self.size, "nearest")
                sample[key] = (fitted[0] if mask.ndim == 2 else fitted).to(mask.dtype)
        if "boxes" in sample and scale is not None:
            sample["boxes"] = torch.as_tensor(sample["boxes"], dtype=torch.float32) * scale
        return sample


@register(TRANSFORMS)
class RadiographAugmentd(Randomizable, MapTransform):
    """Light, anatomy-preserving augmentation for radiographs (see the module docstring).

    Each call draws: rotation in +-``rotate_deg``, isotropic zoom in ``zoom``, shift up to
    ``shift`` of the side, gamma in ``gamma`` and gain in ``gain`` (intensity range preserved by
    rescaling around the image's min..max), and a left-right flip with ``flip_prob`` (0 = never).
    """

    def __init__(self, keys: Sequence[Hashable] = ("image",), mask_keys: Sequence[Hashable] = ("mask",),
                 rotate_deg: float = 5.0, zoom: tuple[float, float] = (0.95, 1.05), shift: float = 0.03,
                 gamma: tuple[float, float] = (0.9, 1.1), gain: tuple[float, float] = (0.95, 1.05),
                 flip_prob: float = 0.0, seed: int | None = None, allow_missing_keys: bool = True):
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.mask_keys = tuple(mask_keys)
        self.rotate_deg, self.zoom, self.shift = float(rotate_deg), tuple(zoom), float(shift)
        self.gamma, self.gain, self.flip_prob = tuple(gamma), tuple(gain), float(flip_prob)
        if seed is not None:
            self.set_random_state(seed)

    def randomize(self, data: Any = None) -> None:
        self._angle = math.radians(self.R.uniform(-self.rotate_deg, self.rotate_deg))
        self._zoom = self.R.uniform(*self.zoom)
        self._shift = self.R.uniform(-self.shift, self.shift, size=2)
        self._gamma = self.R.uniform(*self.gamma)
        self._gain = self.R.uniform(*self.gain)
        self._flip = self.R.random_sample() < self.flip_prob

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        sample = dict(data)
        self.randomize()
        keys = list(self.key_iterator(sample))
        if not keys:
            return sample
        height, width = sample[keys[0]].shape[-2:]
        geometry = {
            "rotate_params": self._angle,
            "scale_params": (self._zoom, self._zoom),
            "translate_params": (float(self._shift[0] * height), float(self._shift[1] * width)),
            "padding_mode": "zeros",
            "image_only": False,
        }
        for key in keys:
            image, output_to_input = Affine(mode="bilinear", **geometry)(torch.as_tensor(sample[key]).float())
            sample[key] = self._intensity(self._maybe_flip(_plain(image)))
        for key in self.mask_keys:
            if key in sample:
                mask = sample[key]
                channel = mask[None] if mask.ndim == 2 else mask
                moved, _ = Affine(mode="nearest", **geometry)(channel.float())
                moved = self._maybe_flip(_plain(moved))
                sample[key] = (moved[0] if mask.ndim == 2 else moved).to(mask.dtype)
        if "boxes" in sample:
            sample["boxes"] = self._move_boxes(sample["boxes"], np.asarray(output_to_input, dtype=np.float64), height, width)
        return sample

    def _maybe_flip(self, image: torch.Tensor) -> torch.Tensor:
        return image.flip(-1) if self._flip else image

    def _intensity(self, image: torch.Tensor) -> torch.Tensor:
        low, high = image.min(), image.max()
        if high <= low:
            return image
        unit = (image - low) / (high - low)
        return (unit.pow(self._gamma) * self._gain).clamp(0, 1) * (high - low) + low

    def _move_boxes(self, boxes, output_to_input: np.ndarray, height: int, width: int) -> torch.Tensor:
        """Map each box's corners with the inverse of MONAI's (output -> input) index affine."""
        boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        if boxes.numel() == 0:
            return boxes
        forward = np.linalg.inv(output_to_input)
        x0, y0, x1, y1 = (boxes[:, i].double().numpy() for i in range(4))
        # edges -> pixel-centre index coordinates (row, col), transform, and back
        corners = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)]
        rows, cols = [], []
        for row, col in corners:
            point = np.stack([row - 0.5, col - 0.5, np.ones_like(row)])
            moved = forward @ point
            rows.append(moved[0] + 0.5)
            cols.append(moved[1] + 0.5)
        rows, cols = np.stack(rows), np.stack(cols)
        moved_boxes = np.stack([cols.min(0), rows.min(0), cols.max(0), rows.max(0)], axis=1)
        moved_boxes[:, [0, 2]] = moved_boxes[:, [0, 2]].clip(0, width)
        moved_boxes[:, [1, 3]] = moved_boxes[:, [1, 3]].clip(0, height)
        if self._flip:
            moved_boxes[:, [0, 2]] = width - moved_boxes[:, [2, 0]]
        return torch.from_numpy(moved_boxes).float()


def _plain(tensor) -> torch.Tensor:
    """MONAI returns MetaTensors; samples carry plain tensors (meta lives in sample["meta"])."""
    return tensor.as_tensor() if isinstance(tensor, MetaTensor) else torch.as_tensor(tensor)


def radiograph_pipeline(size: int = 224, train: bool = False, mean: float = 0.5, std: float = 0.25,
                        channels: int = 1, window="header", **augment_kwargs) -> Compose:
    """DICOM path -> normalised (C, size, size) tensor, with light augmentation when training."""
    steps = [
        LoadDicomd(("image",), window=window, channels=channels),
        AspectResizePadd(("image",), size=size),
    ]
    if train:
        steps.append(RadiographAugmentd(("image",), **augment_kwargs))
    steps.append(NormalizeIntensityd(keys=("image",), subtrahend=mean, divisor=std))
    steps.append(lambda sample: {**sample, "image": _plain(sample["image"])})
    return Compose(steps)
