"""`facetvlp inspect` for point clouds, meshes and LiDAR: what a reader would make of the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facetvlp.core.inspect import register_inspector

from .readers import ALL_SUFFIXES, MESH_SUFFIXES, ply_face_count, read_points


@register_inspector(suffixes=ALL_SUFFIXES)
def summarise_point_file(path: str) -> dict[str, Any]:
    suffix = Path(path).suffix.lower()
    is_mesh = suffix in MESH_SUFFIXES or (suffix == ".ply" and ply_face_count(path) > 0)
    cloud = read_points(path)
    xyz = cloud.xyz
    summary: dict[str, Any] = {
        "kind": "mesh (surface-sampled)" if is_mesh else "point cloud",
        **cloud.meta,
        "channels": cloud.channels(),
        "bounds_min": [round(float(v), 6) for v in xyz.min(axis=0)],
        "bounds_max": [round(float(v), 6) for v in xyz.max(axis=0)],
        "centroid": [round(float(v), 6) for v in xyz.mean(axis=0)],
    }
    if cloud.intensity is not None:
        summary["intensity_range"] = [float(cloud.intensity.min()), float(cloud.intensity.max())]
    if cloud.classification is not None:
        codes, counts = np.unique(cloud.classification, return_counts=True)
        summary["classes"] = {str(int(c)): int(n) for c, n in zip(codes, counts)}
    return summary
