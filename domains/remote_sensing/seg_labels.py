"""Segmentation labels for georeferenced tiles: label rasters and vector footprints.

- :func:`read_vector_labels`: polygons from any vector file GDAL reads (GeoJSON, GeoPackage,
  Shapefile ...) through pyogrio, each with the class value of ``class_field`` (or 1 when every
  feature is the one foreground class), and the file's CRS.
- :func:`rasterize_labels`: those polygons burnt onto a tile grid with
  ``rasterio.features.rasterize``, after reprojecting them to the grid's CRS with
  ``rasterio.warp.transform_geom``. A pixel takes a polygon's value when its centre lies inside
  (rasterio's default, ``all_touched=False``); later features win where polygons overlap.
- :func:`read_label_window`: the part of a label raster under a tile, read on the tile's own grid
  (same CRS, transform and shape) with nearest resampling, so a label raster on another grid
  (another resolution or CRS) still lands on the right pixels; outside the label raster is
  ``nodata``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_geom

from facetvlp.core.extras import import_extra

from .geotiff import RasterReadError, open_raster


class VectorLabelError(RasterReadError):
    """A vector label file that cannot be read, or that lacks the class field asked for."""


def read_vector_labels(path: str | os.PathLike, class_field: str | None = None,
                       class_values: Mapping[Any, int] | None = None,
                       layer: str | int | None = None) -> tuple[list[tuple[shapely.Geometry, int]], CRS]:
    """``([(polygon, value), ...], crs)`` from a vector file.

    ``class_field`` names the attribute holding each feature's class; ``class_values`` maps its
    values to label values (features whose value is not in it are dropped). Without
    ``class_field`` every feature gets 1. Features without geometry are dropped.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VectorLabelError(path, "no such file")
    # imported here: pyogrio imports geopandas (and pandas) when they are installed, close to a
    # second that every import of the domain (`facetvlp inspect x.tif`) would otherwise pay
    pyogrio_raw = import_extra("pyogrio.raw", "remote-sensing", needed_by="reading vector labels")
    try:
        meta, _, wkb, fields = pyogrio_raw.read(path, layer=layer)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, FieldError ...
        raise VectorLabelError(path, f"not a vector file GDAL can read ({exc})") from exc
    if meta["crs"] is None:
        raise VectorLabelError(path, "the vector file has no CRS")
    if class_field is not None and class_field not in list(meta["fields"]):
        raise VectorLabelError(path, f"no field {class_field!r}; fields: {list(meta['fields'])}")
    values = (np.ones(len(wkb), dtype=np.int64) if class_field is None
              else fields[list(meta["fields"]).index(class_field)])
    labels = []
    for blob, value in zip(wkb, values):
        if blob is None:
            continue
        if class_values is not None:
            if value not in class_values:
                continue
            value = class_values[value]
        labels.append((shapely.from_wkb(blob), int(value)))
    return labels, CRS.from_user_input(meta["crs"])


def rasterize_labels(labels: Sequence[tuple[shapely.Geometry, int]], labels_crs: CRS | str,
                     shape: Sequence[int], transform: Affine | Sequence[float], crs: CRS | str,
                     fill: int = 0, all_touched: bool = False) -> np.ndarray:
    """Burn ``(geometry, value)`` pairs given in ``labels_crs`` onto a grid of ``shape`` (H, W)
    with ``transform`` in ``crs``; int64, ``fill`` where no polygon covers a pixel centre."""
    transform = transform if isinstance(transform, Affine) else Affine(*transform[:6])
    source_crs, target_crs = CRS.from_user_input(labels_crs), CRS.from_user_input(crs)
    height, width = int(shape[0]), int(shape[1])
    # only polygons near the tile are reprojected and burnt: label files cover whole areas
    left, top = transform * (0, 0)
    right, bottom = transform * (width, height)
    tile_box = shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    shapes = []
    for geometry, value in labels:
        mapping = shapely.geometry.mapping(geometry)
        if source_crs != target_crs:
            mapping = transform_geom(source_crs, target_crs, mapping)
        if shapely.geometry.shape(mapping).intersects(tile_box):
            shapes.append((mapping, int(value)))
    if not shapes:
        return np.full((height, width), fill, dtype=np.int64)
    burnt = rasterio.features.rasterize(shapes, out_shape=(height, width), transform=transform,
                                        fill=fill, all_touched=all_touched, dtype="int32")
    return burnt.astype(np.int64)


def read_label_window(path: str | os.PathLike, shape: Sequence[int],
                      transform: Affine | Sequence[float], crs: CRS | str,
                      nodata: int = -1) -> np.ndarray:
    """The label raster's band 1 on the given tile grid (nearest); int64, ``nodata`` outside
    the raster or where the raster has its own nodata."""
    transform = transform if isinstance(transform, Affine) else Affine(*transform[:6])
    height, width = int(shape[0]), int(shape[1])
    with open_raster(path, require_georef=True) as ds:
        # a WarpedVRT onto exactly the tile's grid: one code path for same-grid, finer/coarser
        # and other-CRS label rasters. Without a nodata value an added alpha band marks the
        # pixels the raster covers; with one, uncovered pixels come back as that value.
        grid = dict(crs=CRS.from_user_input(crs), transform=transform, width=width, height=height,
                    resampling=Resampling.nearest)
        if ds.nodata is None:
            with WarpedVRT(ds, add_alpha=True, **grid) as vrt:
                values = vrt.read(1).astype(np.int64)
                covered = vrt.read(vrt.count) > 0
        else:
            with WarpedVRT(ds, **grid) as vrt:
                raw = vrt.read(1)
                values, covered = raw.astype(np.int64), raw != ds.nodata
    values[~covered] = nodata
    return values
