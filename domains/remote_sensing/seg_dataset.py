"""Semantic segmentation of georeferenced scenes: tiles with per-pixel class targets.

:class:`GeoSegDataset` cuts scenes into tiles with a sampler (samplers.py; the default grid
sampler with tiles of 256 gives each 256 px chip as one tile), optionally resizes each tile to
``image_size`` (``meta`` then describes the resized grid, see ``geotiff.resize_sample``) and
builds ``seg`` on exactly that grid, from either

- label rasters (``label_rasters``: one file, or a pattern with ``{stem}`` = the scene's file
  name without its suffix, e.g. Kampala's ``binarymasks/{stem}.mask.tif``), read through a
  warp onto the tile grid (nearest), values mapped to classes by ``label_values``; or
- vector footprints (``vector_labels``: one file for all scenes or a ``{stem}`` pattern;
  GeoJSON, GeoPackage ...), reprojected to the scene's CRS and rasterised on the tile grid.

``seg`` is -1 where the image is invalid (nodata, outside the scene) or the label raster has no
value. Groups: the scene file, or with ``group_zoom`` the web-map tile (XYZ scheme) at that zoom
holding the tile's centre, so chips of one area at several zoom levels (Kampala's z19/z20/z21
sets cover the same ground) fall into one group and a split never puts the same ground on both
sides.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from rasterio.warp import transform as transform_points

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS
from facetvlp.core.splits import check_split, select_split

from .geotiff import BandSpec, resize_sample, scene_paths, window_sample
from .scene_dataset import SAMPLERS
from .samplers import as_sources
from .seg_labels import rasterize_labels, read_label_window, read_vector_labels


def web_tile(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """The XYZ (slippy-map) tile at ``zoom`` holding a lon/lat point."""
    n = 2 ** zoom
    x = int((lon + 180.0) / 360.0 * n)
    lat_rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_rad)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _per_scene(spec: str | os.PathLike, scene: str) -> str:
    return os.fspath(spec).format(stem=Path(scene).name.rsplit(".", 1)[0])


@DATASETS.register_module()
class GeoSegDataset(SampleDataset):
    """Tiles of GeoTIFF scenes with segmentation targets (see the module docstring).

    Args:
        scenes: a folder (its rasters, recursively), a file or a list of files.
        seg_classes: class names in index order (e.g. ``["background", "building"]``).
        label_rasters / vector_labels: where the targets come from (exactly one of them).
        label_values: label raster value -> class index (default: the value is the index;
            values outside ``seg_classes`` become -1).
        class_field, class_values: vector attribute holding the class and its value -> class
            index (default: every polygon is class 1 on a class-0 background).
        sampler: sampler config as in GeoTiffTileDataset (default grid tiles of 256).
        image_size: resize tiles to this square size (None keeps the tile size).
        group_zoom, split, val_fraction, split_seed: see the module docstring.
    """

    def __init__(self, scenes, seg_classes: Sequence[str], label_rasters: str | None = None,
                 vector_labels: str | None = None, label_values: Mapping[int, int] | None = None,
                 class_field: str | None = None, class_values: Mapping[Any, int] | None = None,
                 sampler: Mapping[str, Any] | None = None, image_size: int | None = None,
                 bands: Sequence[BandSpec] | None = None, normalize: str | Mapping = "dtype",
                 group_zoom: int | None = None, split: str = "all", val_fraction: float = 0.2,
                 split_seed: int = 0, on_error: str = "raise", seed: int = 0, **source_kwargs: Any):
        super().__init__(on_error=on_error, seed=seed)
        if (label_rasters is None) == (vector_labels is None):
            raise ConfigError("GeoSegDataset: give exactly one of label_rasters and vector_labels")
        check_split(split)
        self.seg_classes = list(seg_classes)
        self.classes = []
        self.label_rasters, self.vector_labels = label_rasters, vector_labels
        self.label_values = None if label_values is None else {int(k): int(v) for k, v in label_values.items()}
        self.class_field, self.class_values = class_field, class_values
        self.image_size, self.bands, self.normalize = image_size, bands, normalize
        self.group_zoom = group_zoom
        cfg = dict(sampler or {"type": "GridTileSampler", "size": 256})
        kind = cfg.pop("type", "GridTileSampler")
        if kind not in SAMPLERS:
            raise ConfigError(f"GeoSegDataset: unknown sampler type {kind!r}; one of {', '.join(SAMPLERS)}")
        if kind == "RandomTileSampler":
            cfg.setdefault("seed", seed)
        paths = scene_paths(scenes) if isinstance(scenes, (str, os.PathLike)) else list(scenes)
        self.sampler = SAMPLERS[kind](as_sources(paths, **source_kwargs), **cfg)
        self.sources = self.sampler.sources
        self._vectors: dict[str, tuple] = {}
        self.tiles = select_split(range(len(self.sampler)), self._group_of_tile, split,
                                  val_fraction, split_seed)
        if not self.tiles:
            raise ConfigError(f"GeoSegDataset: no tiles (split={split!r})")

    def __len__(self) -> int:
        return len(self.tiles)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _group_of_tile(self, tile_index: int) -> str:
        tile = self.sampler[tile_index]
        source = self.sources[tile.scene]
        if self.group_zoom is None:
            return Path(source.path).name
        col, row, width, height = tile.window
        x, y = source.transform * (col + width / 2, row + height / 2)
        lon, lat = transform_points(source.crs, "EPSG:4326", [x], [y])
        tx, ty = web_tile(lon[0], lat[0], self.group_zoom)
        return f"z{self.group_zoom}/{tx}/{ty}"

    def group_of(self, index: int) -> str:
        """The group of item ``index`` (label fractions and splits are drawn per group)."""
        return self._group_of_tile(self.tiles[index])

    def _vector(self, path: str) -> tuple:
        if path not in self._vectors:
            self._vectors[path] = read_vector_labels(path, self.class_field, self.class_values)
        return self._vectors[path]

    def _labels(self, scene: str, meta: Mapping[str, Any]) -> np.ndarray:
        shape, transform, crs = meta["shape"], meta["transform"], meta["crs"]
        if self.vector_labels is not None:
            labels, labels_crs = self._vector(_per_scene(self.vector_labels, scene))
            return rasterize_labels(labels, labels_crs, shape, transform, crs)
        values = read_label_window(_per_scene(self.label_rasters, scene), shape, transform, crs)
        if self.label_values is not None:
            mapped = np.full(values.shape, -1, dtype=np.int64)
            for value, index in self.label_values.items():
                mapped[values == value] = index
            return mapped
        values[values >= len(self.seg_classes)] = -1
        return values

    def load(self, index: int) -> dict[str, Any]:
        tile = self.sampler[self.tiles[index]]
        source = self.sources[tile.scene]
        sample = window_sample(source, tile.window, self.bands, self.normalize)
        if self.image_size is not None:
            sample = resize_sample(sample, (self.image_size, self.image_size))
        seg = self._labels(source.path, sample["meta"])
        seg[~sample["mask"].numpy()] = -1
        sample["seg"] = torch.from_numpy(seg)
        sample["meta"].update(scene=tile.scene, tile=tile.as_dict(), group=self.group_of(index))
        return sample
