"""Box conventions for grounding heads, in one place.

Boxes in the sample dict (`boxes`) are xyxy in pixels of the model input. Heads predict
normalised cxcywh in [0, 1] (DETR / OWL-ViT convention: scale-free, so one L1 weight fits every
image size); these helpers convert between the two. The maths itself is torchvision's.
"""

from __future__ import annotations

import torch
from torchvision.ops import box_convert


def to_normalised_cxcywh(boxes_xyxy: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(M, 4) xyxy pixels -> (M, 4) cxcywh in [0, 1] of an image `height` x `width`."""
    scale = boxes_xyxy.new_tensor([width, height, width, height])
    return box_convert(boxes_xyxy / scale, in_fmt="xyxy", out_fmt="cxcywh")


def to_pixel_xyxy(boxes_cxcywh: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 4) normalised cxcywh -> xyxy pixels of an image `height` x `width`."""
    scale = boxes_cxcywh.new_tensor([width, height, width, height])
    return box_convert(boxes_cxcywh, in_fmt="cxcywh", out_fmt="xyxy") * scale


def rescale_xyxy(boxes: torch.Tensor, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> torch.Tensor:
    """Boxes on one pixel grid moved to another of the same field of view (model -> source)."""
    sy, sx = to_hw[0] / from_hw[0], to_hw[1] / from_hw[1]
    return boxes * boxes.new_tensor([sx, sy, sx, sy])
