"""The sample dict: the one contract between a domain and the core.

A domain dataset returns, per item, a plain dict::

    image   float32 tensor (C, H, W), or (C, D, H, W) for volumes   -- or --
    points  float32 tensor (N, C)  (xyz first, then optional rgb / normals / intensity)
    text    str, or list[str] of facets (any one of them is a valid caption for the item)
    labels  optional float32 multi-hot tensor (K,)  (K = the dataset's `classes`)
    mask    optional tensor (H, W) or (N,)  (validity)
    seg     optional int64 tensor (H, W), (D, H, W) or (N,): class indices into the dataset's
            ``seg_classes``, -1 = ignore
    boxes   optional float32 tensor (M, 4) as x0, y0, x1, y1 in pixels
    meta    dict of JSON-able, privacy-safe metadata: source id, spacing, CRS, bounds ...

`meta` must never hold patient identifiers; `check_sample` refuses values that are not JSON-able
so that nothing exotic (a pydicom Dataset, a rasterio handle) slips into logs or checkpoints.
"""

from __future__ import annotations

import json
from typing import Any

import torch

TENSOR_KEYS = ("image", "points", "labels", "mask", "boxes", "seg")


def check_sample(sample: dict[str, Any], where: str = "sample") -> dict[str, Any]:
    """Validate a sample dict against the contract; returns it unchanged or raises ValueError."""
    if not isinstance(sample, dict):
        raise ValueError(f"{where}: a sample must be a dict, got {type(sample).__name__}")
    if ("image" in sample) == ("points" in sample) and "text" not in sample:
        raise ValueError(f"{where}: a sample needs 'image' or 'points' (or at least 'text')")
    if "image" in sample:
        image = sample["image"]
        if not (torch.is_tensor(image) and image.ndim in (3, 4) and image.dtype == torch.float32):
            raise ValueError(f"{where}: 'image' must be a float32 tensor (C, H, W) or (C, D, H, W)")
    if "points" in sample:
        points = sample["points"]
        if not (torch.is_tensor(points) and points.ndim == 2 and points.shape[1] >= 3):
            raise ValueError(f"{where}: 'points' must be a float32 tensor (N, C>=3)")
    if "seg" in sample:
        seg = sample["seg"]
        if not (torch.is_tensor(seg) and seg.dtype == torch.int64 and seg.ndim in (1, 2, 3)):
            raise ValueError(f"{where}: 'seg' must be an int64 tensor (H, W), (D, H, W) or (N,)")
    if "text" in sample:
        text = sample["text"]
        facets = [text] if isinstance(text, str) else text
        if not facets or not all(isinstance(t, str) for t in facets):
            raise ValueError(f"{where}: 'text' must be a str or a non-empty list of str")
    meta = sample.get("meta", {})
    try:
        json.dumps(meta)
    except TypeError as exc:
        raise ValueError(f"{where}: 'meta' must be JSON-able ({exc})") from exc
    return sample


def facets_of(sample: dict[str, Any]) -> list[str]:
    """The sample's texts as a list (a single caption is a one-facet list)."""
    text = sample.get("text", [])
    return [text] if isinstance(text, str) else list(text)
