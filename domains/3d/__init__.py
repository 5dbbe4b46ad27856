"""3D domain: point clouds, meshes and LiDAR (imported as `facetvlp.domains.pointcloud`).

Importing it registers the point towers, datasets, shape knowledge, the zero-shot evaluators
and the `facetvlp inspect` summarisers for point files.
"""

from . import datasets, evaluators, inspect, knowledge, readers, tower  # noqa: F401
from . import part_dataset, seg_head, writers  # noqa: F401  (per-point segmentation)
from .readers import (
    EmptyPointCloudError,
    PointCloud,
    PointCloudFormatError,
    PointCloudNotFoundError,
    PointCloudReadError,
    UnsupportedPointFileError,
    read_points,
)

__all__ = [
    "PointCloud", "read_points", "PointCloudReadError", "PointCloudNotFoundError",
    "PointCloudFormatError", "EmptyPointCloudError", "UnsupportedPointFileError",
]
