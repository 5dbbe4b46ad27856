"""3D domain: point clouds, meshes and LiDAR (imported as `facetvlp.domains.pointcloud`).

Importing it registers the point towers, datasets, shape knowledge, the multi-view projection
evaluator and the `facetvlp inspect` summarisers for point files.
"""

from . import datasets, inspect, knowledge, projection, readers, tower  # noqa: F401
from . import open_vocab, part_dataset, seg_head, writers  # noqa: F401  (per-point segmentation)
from . import grounding  # noqa: F401  (phrase -> points -> 3D boxes)
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
