"""Building (or any footprint) boxes over georeferenced chips, for grounding heads (predicted
boxes go back to the ground with ``writers.write_box_geojson``).

Each chip is read whole (optionally resampled to ``image_size``: the sample's ``meta.transform``
then describes the resampled grid). Its footprints come from a GeoJSON per chip (``<stem>.geojson``
in ``labels``) or one GeoJSON for all chips, in any CRS the file names (RFC 7946 files without a
``crs`` member are lon/lat); they are reprojected to the chip's CRS and each one's pixel bounding
box, clipped to the chip, becomes a box. Label files are read like segmentation labels
(``seg_labels.read_vector_labels``, GDAL through pyogrio). A box thinner than ``min_side`` pixels after clipping
(a building cut by the chip edge) is dropped. Chips named by web-mercator tile (``...-x-y-z``)
group by their zoom-``group_zoom`` parent, so ``groups=[...]`` makes a spatial split that keeps
every zoom level of the same ground on one side.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import shapely
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS

from .geotiff import read_window, scene_paths
from .seg_labels import read_vector_labels


def read_footprints(path: str | os.PathLike) -> tuple[list[shapely.Geometry], CRS]:
    """The polygons of a vector label file (GeoJSON or any format GDAL reads) and its CRS."""
    labels, crs = read_vector_labels(path)
    polygons = [g for g, _ in labels if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    return polygons, crs


def pixel_boxes(polygons: Sequence[shapely.Geometry], polygons_crs: CRS | str, meta: dict,
                min_side: float) -> torch.Tensor:
    """(M, 4) xyxy pixel boxes on the sample's grid of the polygons, clipped to it."""
    height, width = meta["shape"]
    to_pixel = ~Affine(*meta["transform"][:6])
    source, target = CRS.from_user_input(polygons_crs), CRS.from_user_input(meta["crs"])
    boxes = []
    for polygon in polygons:
        mapping = shapely.geometry.mapping(polygon)
        if source != target:
            mapping = transform_geom(source, target, mapping)
        ground = shapely.geometry.shape(mapping)
        pixels = shapely.affinity.affine_transform(ground, to_pixel.to_shapely())
        x0, y0, x1, y1 = pixels.bounds
        x0, x1 = np.clip([x0, x1], 0, width)
        y0, y1 = np.clip([y0, y1], 0, height)
        if x1 - x0 >= min_side and y1 - y0 >= min_side:
            boxes.append([x0, y0, x1, y1])
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)


XYZ_NAME = re.compile(r"(\d+)-(\d+)-(\d+)$")


def xyz_group(stem: str, zoom: int) -> str:
    """The "x-y" of the zoom-`zoom` web-mercator tile that holds a chip named ...-x-y-z, so chips
    of several zoom levels over the same ground fall in one group; other names are their own."""
    match = XYZ_NAME.search(stem)
    if not match:
        return stem
    x, y, z = (int(v) for v in match.groups())
    if z < zoom:
        return stem
    return f"{x >> (z - zoom)}-{y >> (z - zoom)}"


@DATASETS.register_module()
class FootprintBoxDataset(SampleDataset):
    """``image``, ``boxes`` (xyxy pixels), ``box_labels`` (all 0: the one query) per chip."""

    def __init__(self, chips: str | os.PathLike | Sequence[str | os.PathLike],
                 labels: str | os.PathLike, image_size: int | None = None, query: str = "building",
                 min_side: float = 2.0, groups: Sequence[str] | None = None, group_zoom: int = 19,
                 on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        self.group_zoom = group_zoom
        self.paths = [Path(p) for p in scene_paths(chips)]
        if groups is not None:  # a spatial split: keep the chips under these tiles
            self.paths = [p for p in self.paths if xyz_group(p.stem, group_zoom) in set(groups)]
        if not self.paths:
            raise ConfigError(f"chips: no GeoTIFF chips in {chips}" + (f" under groups {list(groups)}" if groups else ""))
        self.labels = Path(labels)
        self.image_size, self.min_side = image_size, min_side
        self.queries = [query]
        self._shared = None  # one vector file for every chip: read once
        if self.labels.is_file():
            self._shared = read_footprints(self.labels)

    def __len__(self) -> int:
        return len(self.paths)

    def group_of(self, index: int) -> str:
        return xyz_group(self.paths[index].stem, self.group_zoom)

    def load(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        shape = (self.image_size, self.image_size) if self.image_size else None
        sample = read_window(path, out_shape=shape)
        polygons, crs = self._shared or read_footprints(self.labels / f"{path.stem}.geojson")
        boxes = pixel_boxes(polygons, crs, sample["meta"], self.min_side)
        sample["boxes"] = boxes
        sample["box_labels"] = torch.zeros(len(boxes), dtype=torch.int64)
        sample["image"] = sample["image"][:3].float()
        return sample
