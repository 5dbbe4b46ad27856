"""Per-point predictions written back into LAS/LAZ files with laspy.

A model sees a sampled subset of each tile (a fixed number of points); :func:`write_las_classes`
gives every point of the input file the class of its nearest predicted point (a KD-tree over the
predicted points in file coordinates, ``scipy.spatial.cKDTree``) and writes the file again with
only the ``classification`` field changed: same point count and order, same point format,
header scales/offsets, VLRs/EVLRs (CRS), extra bytes, GPS time, colours, intensities and flags.

Predicted class indices become ASPRS codes through ``class_codes`` (the dataset's class order,
e.g. ``[2, 5, 6]``). Points farther than ``max_distance`` (file units) from every predicted
point keep their original class, as do all points when nothing was predicted near them; pass
``unpredicted_code`` to overwrite those instead (1 = "unclassified").
"""

from __future__ import annotations

import os
from typing import Sequence

import laspy
import numpy as np
from scipy.spatial import cKDTree

from .readers import PointCloudFormatError


def tile_points_to_file(points: np.ndarray, meta: dict) -> np.ndarray:
    """Normalised tile xyz (a LidarTileDataset sample, no augmentation) -> file coordinates."""
    return np.asarray(points, dtype=np.float64)[:, :3] * float(meta["scale"]) + np.asarray(meta["offset"])


def propagate_nearest(predicted_xyz: np.ndarray, predicted: np.ndarray, xyz: np.ndarray,
                      max_distance: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each point of ``xyz`` takes the value of its nearest predicted point. Returns the
    values and a bool array of the points that got one (within ``max_distance``)."""
    tree = cKDTree(np.asarray(predicted_xyz, dtype=np.float64))
    distance, nearest = tree.query(np.asarray(xyz, dtype=np.float64), k=1,
                                   distance_upper_bound=np.inf if max_distance is None else max_distance)
    reached = np.isfinite(distance)
    values = np.zeros(len(xyz), dtype=np.asarray(predicted).dtype)
    values[reached] = np.asarray(predicted)[nearest[reached]]
    return values, reached


def write_las_classes(source: str | os.PathLike, out: str | os.PathLike,
                      predicted_xyz: np.ndarray, predicted: np.ndarray,
                      class_codes: Sequence[int], max_distance: float | None = None,
                      unpredicted_code: int | None = None) -> dict:
    """Write ``source`` to ``out`` (LAS or, by suffix, LAZ) with predicted classes.

    Args:
        predicted_xyz: (M, 3) predicted points in the file's coordinates (see
            :func:`tile_points_to_file`); several tiles' points may be concatenated.
        predicted: (M,) class indices into ``class_codes``; -1 = no prediction for that point.
    Returns counts: points, predicted points used, points reclassified, points out of reach.
    """
    source, out = os.fspath(source), os.fspath(out)
    try:
        las = laspy.read(source)
    except (laspy.errors.LaspyException, ValueError, EOFError, OSError) as exc:
        raise PointCloudFormatError(source, f"laspy could not read it: {exc}") from exc
    predicted = np.asarray(predicted).astype(np.int64)
    predicted_xyz = np.asarray(predicted_xyz, dtype=np.float64)
    if predicted_xyz.shape != (len(predicted), 3):
        raise ValueError(f"predicted_xyz {predicted_xyz.shape} does not match {len(predicted)} predictions")
    codes = np.asarray(class_codes, dtype=np.int64)
    known = (predicted >= 0) & (predicted < len(codes))
    if not known.any():
        raise ValueError("no prediction with a class index inside class_codes")
    limit = 31 if las.header.point_format.id <= 5 else 255  # LAS 1.0-1.3 formats: 5-bit classes
    if codes.max() > limit:
        raise ValueError(f"class code {codes.max()} does not fit point format {las.header.point_format.id} (max {limit})")
    xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    index, reached = propagate_nearest(predicted_xyz[known], predicted[known], xyz, max_distance)
    classification = np.asarray(las.classification).astype(np.int64)
    new = classification.copy()
    new[reached] = codes[index[reached]]
    if unpredicted_code is not None:
        new[~reached] = unpredicted_code
    las.classification = new.astype(np.uint8)
    las.write(out)
    return {"points": int(len(xyz)), "predicted_points": int(known.sum()),
            "reclassified": int((new != classification).sum()), "out_of_reach": int((~reached).sum())}
