"""3D domain: point clouds, meshes and LiDAR (imported as `facetvlp.domains.pointcloud`).

Importing it registers the point towers, datasets, shape knowledge, the zero-shot
evaluators (on the first registry lookup, `facetvlp.domains.defer_types`) and the
`facetvlp inspect` summarisers for point files (at once). Its packages come with
``pip install "facetvlp[3d]"``; open3d and laspy are imported where a reader needs them.
"""

from facetvlp.domains import defer_types, extra_guard, require_extra

require_extra("pointcloud")
with extra_guard("pointcloud"):
    from . import inspect  # noqa: F401  (the `facetvlp inspect` summariser: numpy, open3d/laspy when read)
    from .readers import (
        EmptyPointCloudError,
        PointCloud,
        PointCloudFormatError,
        PointCloudNotFoundError,
        PointCloudReadError,
        UnsupportedPointFileError,
        read_points,
    )

defer_types("pointcloud", (
    "datasets", "evaluators", "knowledge", "readers", "tower",
    "part_dataset", "seg_head", "writers",  # per-point segmentation
    "grounding",  # phrase -> points -> boxes
))

__all__ = [
    "PointCloud", "read_points", "PointCloudReadError", "PointCloudNotFoundError",
    "PointCloudFormatError", "EmptyPointCloudError", "UnsupportedPointFileError",
]
