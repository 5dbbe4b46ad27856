"""Predictions written back georeferenced: GeoTIFF rasters and GeoJSON vectors in the input CRS.

- :func:`write_class_raster` / :func:`write_probability_raster`: one array for one tile or scene,
  with the CRS and transform of the input (a sample's ``meta``, a path or a RasterSource).
- :class:`TiledPredictionWriter`: a scene-sized GeoTIFF filled tile by tile from a grid sampler;
  each tile writes only its ``core``, so overlapping tiles stitch without seams or double writes
  and memory stays one tile, whatever the scene size.
- :func:`class_raster_to_features` + :func:`write_geojson`: class regions as polygons in the
  raster's CRS. The file names its CRS in a ``crs`` member ("urn:ogc:def:crs:EPSG::xxxx", or WKT
  for CRSs without an EPSG code), which GDAL/OGR, QGIS and geopandas read. RFC 7946 readers
  that assume lon/lat need the data in EPSG:4326: pass ``to_crs="EPSG:4326"`` to reproject; that
  file is plain RFC 7946 (longitude, latitude order, no ``crs`` member).
- :func:`write_box_geojson`: predicted boxes (xyxy pixels on a sample's grid) as lon/lat polygons.
- :func:`to_source_grid`, :func:`write_tile_prediction`, :func:`write_prediction_polygons`: a
  prediction made on a resized tile (the model grid ``meta`` describes) brought back to the
  tile's window on the source grid (nearest) and written as a GeoTIFF / as EPSG:4326 polygons.
  :class:`ScenePredictionWriter` stitches such tiles into one GeoTIFF per scene.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import rasterio
import rasterio.features
import shapely
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window

from .geotiff import RasterSource

GeoRef = Mapping[str, Any] | RasterSource | str | os.PathLike


def georeference_of(like: GeoRef) -> tuple[CRS, Affine]:
    """(CRS, transform) from a sample ``meta``, a RasterSource or a raster path."""
    if isinstance(like, Mapping):
        return CRS.from_user_input(like["crs"]), Affine(*like["transform"][:6])
    if isinstance(like, RasterSource):
        return like.crs, like.transform
    with rasterio.open(like) as ds:
        return ds.crs, ds.transform


def _profile(crs: CRS, transform: Affine, count: int, height: int, width: int, dtype: str,
             nodata) -> dict[str, Any]:
    profile = dict(driver="GTiff", width=width, height=height, count=count, dtype=dtype, crs=crs,
                   transform=transform, nodata=nodata, compress="deflate")
    if height >= 256 and width >= 256:  # tiled files read windows fast; tiny ones stay strips
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def write_class_raster(path: str | os.PathLike, classes: np.ndarray, like: GeoRef,
                       class_names: Sequence[str] | None = None, nodata: int = 255,
                       colormap: Mapping[int, Sequence[int]] | None = None) -> str:
    """A (H, W) class-index raster as a single-band uint8 (or uint16) GeoTIFF.

    Pixels equal to ``nodata`` are "no prediction". ``class_names`` go into the band metadata
    (``class_<i>`` tags) so the file explains itself.
    """
    classes = np.asarray(classes)
    if classes.ndim != 2:
        raise ValueError(f"classes must be (H, W), got shape {classes.shape}")
    dtype = "uint8" if classes.max(initial=0) <= 255 and nodata <= 255 else "uint16"
    crs, transform = georeference_of(like)
    profile = _profile(crs, transform, 1, *classes.shape, dtype, nodata)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(classes.astype(dtype), 1)
        if class_names:
            ds.update_tags(1, **{f"class_{i}": name for i, name in enumerate(class_names)})
        if colormap:
            ds.write_colormap(1, {int(k): tuple(v) for k, v in colormap.items()})
    return os.fspath(path)


def write_probability_raster(path: str | os.PathLike, probabilities: np.ndarray, like: GeoRef,
                             class_names: Sequence[str] | None = None) -> str:
    """(K, H, W) per-class probabilities as a K-band float32 GeoTIFF, one class per band
    (band descriptions = class names)."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3:
        raise ValueError(f"probabilities must be (K, H, W), got shape {probabilities.shape}")
    if class_names is not None and len(class_names) != probabilities.shape[0]:
        raise ValueError(f"{len(class_names)} class names for {probabilities.shape[0]} bands")
    crs, transform = georeference_of(like)
    profile = _profile(crs, transform, probabilities.shape[0], *probabilities.shape[1:],
                       "float32", None)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(probabilities)
        if class_names is not None:
            ds.descriptions = tuple(class_names)
    return os.fspath(path)


class TiledPredictionWriter:
    """Scene-sized GeoTIFF written tile by tile (use as a context manager).

    Args:
        path: output file.
        scene: the RasterSource the tiles were cut from (its grid, CRS and transform are used).
        count, dtype, nodata: of the output; pixels no tile wrote keep ``nodata``.
        band_names: band descriptions (class names for probabilities).
        class_names: for a class-index raster, written as ``class_<i>`` band tags.
    """

    def __init__(self, path: str | os.PathLike, scene: RasterSource, count: int = 1,
                 dtype: str = "uint8", nodata: float | None = 255,
                 band_names: Sequence[str] | None = None,
                 class_names: Sequence[str] | None = None):
        height, width = scene.shape
        self.path = os.fspath(path)
        profile = _profile(scene.crs, scene.transform, count, height, width, dtype, nodata)
        self._ds = rasterio.open(self.path, "w", **profile)
        if band_names is not None:
            self._ds.descriptions = tuple(band_names)
        if class_names:  # a class raster explains itself, as write_class_raster's does
            self._ds.update_tags(1, **{f"class_{i}": name for i, name in enumerate(class_names)})
        self.shape = (height, width)

    def write(self, tile, prediction: np.ndarray) -> None:
        """``prediction`` covers ``tile.window`` ((C, h, w) or (h, w)); only ``tile.core``
        (clipped to the scene) is written."""
        prediction = np.asarray(prediction)
        if prediction.ndim == 2:
            prediction = prediction[None]
        col, row, width, height = tile.window
        if prediction.shape[1:] != (height, width):
            raise ValueError(f"prediction {prediction.shape[1:]} does not match the tile window "
                             f"{(height, width)}")
        core_col, core_row, core_w, core_h = tile.core
        c0, r0 = max(core_col, 0), max(core_row, 0)
        c1 = min(core_col + core_w, self.shape[1])
        r1 = min(core_row + core_h, self.shape[0])
        if c1 <= c0 or r1 <= r0:
            return
        part = prediction[:, r0 - row:r1 - row, c0 - col:c1 - col]
        self._ds.write(part.astype(self._ds.dtypes[0]), window=Window(c0, r0, c1 - c0, r1 - r0))

    def close(self) -> None:
        if not self._ds.closed:
            self._ds.close()

    def __enter__(self) -> "TiledPredictionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def class_raster_to_features(classes: np.ndarray, like: GeoRef,
                             class_names: Sequence[str] | None = None, nodata: int | None = 255,
                             connectivity: int = 4) -> list[tuple[shapely.Geometry, dict]]:
    """Polygons of connected same-class regions, in the raster's CRS, with
    ``{"class_id": i, "class": name}`` properties (nodata pixels are left out)."""
    classes = np.asarray(classes)
    _, transform = georeference_of(like)
    dtype = np.uint8 if classes.max(initial=0) <= 255 else np.uint16
    mask = None if nodata is None else classes != nodata
    features = []
    for geometry, value in rasterio.features.shapes(classes.astype(dtype), mask=mask,
                                                    connectivity=connectivity,
                                                    transform=transform):
        class_id = int(value)
        properties = {"class_id": class_id}
        if class_names is not None and class_id < len(class_names):
            properties["class"] = class_names[class_id]
        features.append((shapely.geometry.shape(geometry), properties))
    return features


def _crs_member(crs: CRS) -> dict[str, Any]:
    code = crs.to_epsg(confidence_threshold=100)
    name = f"urn:ogc:def:crs:EPSG::{code}" if code is not None else crs.to_wkt()
    return {"type": "name", "properties": {"name": name}}


def write_geojson(path: str | os.PathLike,
                  features: Iterable[tuple[shapely.Geometry, Mapping[str, Any]]],
                  crs: str | CRS | GeoRef, to_crs: str | CRS | None = None) -> str:
    """(geometry, properties) pairs as a GeoJSON FeatureCollection in ``crs`` (a CRS, or the
    CRS of a sample meta / RasterSource / raster path), optionally reprojected to ``to_crs``."""
    if isinstance(crs, (Mapping, RasterSource)) or (
            isinstance(crs, (str, os.PathLike)) and os.path.exists(crs)):
        crs = georeference_of(crs)[0]
    source_crs = CRS.from_user_input(crs)
    target_crs = CRS.from_user_input(to_crs) if to_crs is not None else source_crs
    out = []
    for geometry, properties in features:
        mapping = shapely.geometry.mapping(geometry)
        if target_crs != source_crs:
            mapping = transform_geom(source_crs, target_crs, mapping)
        out.append({"type": "Feature", "geometry": mapping, "properties": dict(properties)})
    collection = {"type": "FeatureCollection", "features": out}
    if target_crs != CRS.from_epsg(4326):  # RFC 7946 files are lon/lat and carry no crs member
        collection["crs"] = _crs_member(target_crs)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(collection, handle)
    return os.fspath(path)


def to_source_grid(classes: np.ndarray, meta: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """A (h, w) prediction on the grid ``meta`` describes (a tile, possibly resized for the
    model) -> the same ground at the resolution of the window read from the source
    (``meta["window"]``), nearest neighbour; returns it with the meta of that grid."""
    classes = np.asarray(classes)
    height, width = classes.shape
    native_w, native_h = (int(round(v)) for v in meta["window"][2:4])
    t = Affine(*meta["transform"][:6]) * Affine.scale(width / native_w, height / native_h)
    grid = {**meta, "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "shape": [native_h, native_w]}
    if (height, width) != (native_h, native_w):
        import torch
        import torch.nn.functional as F

        resized = F.interpolate(torch.from_numpy(classes.astype(np.float32))[None, None],
                                size=(native_h, native_w), mode="nearest-exact")[0, 0]
        classes = resized.round().numpy().astype(classes.dtype)
    return classes, grid


def write_tile_prediction(path: str | os.PathLike, classes: np.ndarray, meta: Mapping[str, Any],
                          class_names: Sequence[str] | None = None, nodata: int = 255) -> str:
    """One tile's class prediction as a GeoTIFF on the source grid (CRS, transform, nodata)."""
    native, grid = to_source_grid(classes, meta)
    return write_class_raster(path, native, grid, class_names, nodata=nodata)


def write_prediction_polygons(path: str | os.PathLike, classes: np.ndarray,
                              meta: Mapping[str, Any], class_names: Sequence[str] | None = None,
                              skip: Sequence[int] = (0,), nodata: int = 255) -> str:
    """Regions of one tile's prediction as RFC 7946 GeoJSON polygons (EPSG:4326, lon/lat),
    traced on the source grid; classes in ``skip`` (the background) are left out."""
    native, grid = to_source_grid(classes, meta)
    features = [(geometry, properties) for geometry, properties
                in class_raster_to_features(native, grid, class_names, nodata=nodata)
                if properties["class_id"] not in set(skip)]
    return write_geojson(path, features, grid, to_crs="EPSG:4326")


class ScenePredictionWriter:
    """Stitch per-tile predictions of one scene into a scene-sized GeoTIFF.

    Tiles come from a grid sampler over the scene (``sampler.sources[scene]``); each prediction
    may be on a resized tile grid (its sample's ``meta``): it is brought back to the tile window
    first, then only the tile's core is written (see :class:`TiledPredictionWriter`).
    """

    def __init__(self, path: str | os.PathLike, scene: RasterSource,
                 class_names: Sequence[str] | None = None, nodata: int = 255):
        self._writer = TiledPredictionWriter(path, scene, count=1, dtype="uint8", nodata=nodata,
                                             class_names=class_names)
        self.path = self._writer.path

    def write(self, tile, classes: np.ndarray, meta: Mapping[str, Any]) -> None:
        native, _ = to_source_grid(classes, meta)
        self._writer.write(tile, native)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> "ScenePredictionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_box_geojson(path: str | os.PathLike, boxes: torch.Tensor, scores: torch.Tensor,
                      labels: torch.Tensor, texts: Sequence[str], meta: dict) -> str:
    """Boxes predicted on a sample's grid (xyxy pixels) as lon/lat polygons (RFC 7946, EPSG:4326)
    with ``text`` and ``score`` properties."""
    to_ground = Affine(*meta["transform"][:6])
    features = []
    for box, score, label in zip(torch.as_tensor(boxes).tolist(), torch.as_tensor(scores).tolist(),
                                 torch.as_tensor(labels).tolist()):
        corners = [to_ground * (x, y) for x, y in ((box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3]))]
        features.append((shapely.Polygon(corners), {"text": texts[int(label)], "score": round(float(score), 6)}))
    return write_geojson(path, features, crs=meta["crs"], to_crs="EPSG:4326")
