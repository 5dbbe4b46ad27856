"""Multi-view depth maps of point clouds, so any image-text model can classify them zero-shot.

In the spirit of PointCLIP V2: the cloud is seen from several directions, each view is an
orthographic depth image (nearer = brighter, a z-buffer keeps the nearest point per pixel), sparse
pixels are filled by a local max filter and softened by a small Gaussian so the image looks like
a shaded silhouette rather than scattered dots. Rendering is batched torch and differentiable-free
(scatter_reduce), on CPU or CUDA. The views feed the ``MultiViewZeroShot`` evaluator
(evaluators.py) and the image side of ULIP triplets (datasets.py).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

# CLIP's image normalisation; most image-text towers were trained with it or close to it
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


def view_rotations(azimuths_deg: Sequence[float], elevation_deg: float = 20.0) -> torch.Tensor:
    """(V, 3, 3) rotations taking z-up world coordinates into camera coordinates (x right,
    y up on the image, z towards the viewer) for cameras circling the object."""
    mats = []
    el = math.radians(elevation_deg)
    for az_deg in azimuths_deg:
        az = math.radians(az_deg)
        # spin the object about z, then tilt so the camera looks slightly down on it
        spin = torch.tensor([[math.cos(az), -math.sin(az), 0.0],
                             [math.sin(az), math.cos(az), 0.0],
                             [0.0, 0.0, 1.0]])
        # world y -> camera -z (depth), world z -> camera y (up), tilted by the elevation
        look = torch.tensor([[1.0, 0.0, 0.0],
                             [0.0, math.sin(el), math.cos(el)],
                             [0.0, -math.cos(el), math.sin(el)]])
        mats.append(look @ spin)
    return torch.stack(mats)


def depth_maps(points: torch.Tensor, rotations: torch.Tensor, size: int = 224,
               margin: float = 0.05) -> torch.Tensor:
    """Raw z-buffer images (B, V, size, size) in [0, 1]: 1 = nearest possible point, 0 = empty.

    Points are assumed inside the unit sphere (the datasets' normalisation); the sphere fills
    the image up to ``margin``.
    """
    xyz = points[..., :3].float()
    batch, n_points, _ = xyz.shape
    n_views = rotations.shape[0]
    cam = torch.einsum("vij,bnj->bvni", rotations.to(xyz), xyz)  # (B, V, N, 3)
    scale = (1 - margin) * size / 2
    col = ((cam[..., 0] * scale) + size / 2).floor().long().clamp(0, size - 1)
    row = ((-cam[..., 1] * scale) + size / 2).floor().long().clamp(0, size - 1)
    nearness = ((cam[..., 2] + 1) / 2).clamp(0, 1) * 0.8 + 0.2  # empty pixels stay 0
    flat = torch.zeros(batch, n_views, size * size, device=xyz.device)
    flat.scatter_reduce_(2, row * size + col, nearness, reduce="amax", include_self=True)
    return flat.view(batch, n_views, size, size)


def densify(depth: torch.Tensor, dilate: int = 3, blur_sigma: float = 1.0) -> torch.Tensor:
    """Fill gaps between projected points (local max) and soften edges (Gaussian blur)."""
    batch, views, h, w = depth.shape
    x = depth.reshape(batch * views, 1, h, w)
    if dilate > 1:
        x = F.max_pool2d(x, dilate, stride=1, padding=dilate // 2)
    if blur_sigma > 0:
        radius = max(1, int(math.ceil(2 * blur_sigma)))
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-(offsets**2) / (2 * blur_sigma**2))
        kernel = kernel / kernel.sum()
        x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
        x = F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return x.view(batch, views, h, w)


def to_image_tensor(depth: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """(..., H, W) depth -> (..., 3, H, W) image tensor, CLIP-normalised by default."""
    image = depth.unsqueeze(-3).expand(*depth.shape[:-2], 3, *depth.shape[-2:])
    if not normalise:
        return image.contiguous()
    mean = torch.tensor(IMAGE_MEAN, device=depth.device).view(3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=depth.device).view(3, 1, 1)
    return (image - mean) / std


def render_views(points: torch.Tensor, azimuths: Sequence[float] = (0, 60, 120, 180, 240, 300),
                 elevation: float = 20.0, size: int = 224, dilate: int = 3,
                 blur_sigma: float = 1.0, normalise: bool = True) -> torch.Tensor:
    """(B, N, 3+) clouds -> (B, V, 3, size, size) view images ready for an image tower."""
    depth = depth_maps(points, view_rotations(azimuths, elevation), size)
    return to_image_tensor(densify(depth, dilate, blur_sigma), normalise)


def render_training_view(points: torch.Tensor, generator: torch.Generator, size: int = 224,
                         elevation: float = 20.0, normalise: bool = True) -> torch.Tensor:
    """One view from a random azimuth, (3, size, size): the image side of a ULIP triplet."""
    azimuth = float(torch.rand((), generator=generator)) * 360.0
    views = render_views(points.unsqueeze(0), (azimuth,), elevation, size, normalise=normalise)
    return views[0, 0]
