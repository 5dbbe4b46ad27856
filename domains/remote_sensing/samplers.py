"""Where to cut tiles from scenes: grid and random tile samplers, kept apart from datasets.

A sampler looks only at scene geometry (size, transform, CRS) and yields :class:`Tile` records
-- a scene index and a pixel window in that scene's grid -- that a dataset then reads. Both
samplers are sequences (``len`` and random access), so a plain ``DataLoader`` with its own index
sampler works, and a resumed run sees the same tiles.

Scenes need not share a CRS: each is tiled in its own grid, with no mosaicking or reprojection
(overlapping scenes give tiles from each). A region of interest may be given in any CRS; it is
reprojected to each scene's CRS and only tiles touching it are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import rasterio.windows
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window

from facetvlp.core.errors import ConfigError

from .geotiff import RasterSource

SceneLike = str | os.PathLike | RasterSource


@dataclass(frozen=True)
class Tile:
    """One tile: ``window`` is what to read; ``core`` is the part of it this tile owns.

    Both are (col_off, row_off, width, height) in pixels of scene ``scene``'s grid. Across a
    :class:`GridTileSampler`, cores never overlap and together cover the sampled region, so
    per-tile predictions can be stitched by writing each tile's core (see writers.py).
    """

    scene: int
    window: tuple[int, int, int, int]
    core: tuple[int, int, int, int]

    def as_dict(self) -> dict[str, Any]:
        return {"scene": self.scene, "window": list(self.window), "core": list(self.core)}


def as_sources(scenes: Sequence[SceneLike], **source_kwargs: Any) -> list[RasterSource]:
    """RasterSources for paths (with ``source_kwargs``); given sources are kept as they are."""
    if isinstance(scenes, (str, os.PathLike, RasterSource)):
        scenes = [scenes]
    return [s if isinstance(s, RasterSource) else RasterSource(s, **source_kwargs)
            for s in scenes]


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from one int or a pair."""
    if np.isscalar(value):
        return int(value), int(value)
    return int(value[0]), int(value[1])


def _region(source: RasterSource, roi, roi_crs) -> tuple[tuple[int, int, int, int] | None, Any]:
    """Pixel range (row0, row1, col0, col1) of the ROI within the scene, and the ROI geometry
    in the scene's CRS (None = whole scene). Range None = the ROI misses the scene."""
    height, width = source.shape
    if roi is None:
        return (0, height, 0, width), None
    geometry = shapely.box(*roi) if isinstance(roi, (tuple, list)) else roi
    if roi_crs is not None and CRS.from_user_input(roi_crs) != source.crs:
        geometry = shapely.geometry.shape(transform_geom(
            CRS.from_user_input(roi_crs), source.crs, shapely.geometry.mapping(geometry)))
    scene_box = shapely.box(*rasterio.windows.bounds(Window(0, 0, width, height),
                                                     source.transform))
    part = geometry.intersection(scene_box)
    if part.is_empty or part.area == 0:
        return None, geometry
    win = rasterio.windows.from_bounds(*part.bounds, transform=source.transform)
    row0, col0 = max(0, int(np.floor(win.row_off))), max(0, int(np.floor(win.col_off)))
    row1 = min(height, int(np.ceil(win.row_off + win.height)))
    col1 = min(width, int(np.ceil(win.col_off + win.width)))
    if row1 <= row0 or col1 <= col0:
        return None, geometry
    return (row0, row1, col0, col1), geometry


def _touches(source: RasterSource, window: tuple[int, int, int, int], geometry) -> bool:
    if geometry is None:
        return True
    bounds = rasterio.windows.bounds(Window(*window), source.transform)
    return geometry.intersects(shapely.box(*bounds))


def grid_starts(lo: int, hi: int, size: int, stride: int, extent: int) -> list[int]:
    """Tile starts covering [lo, hi) with tiles of ``size`` every ``stride`` pixels.

    The last tile is snapped back to end at ``hi`` instead of running past it; it is added only
    when the regular starts do not already end there, so no tile is duplicated. A region shorter
    than one tile gets one tile, shifted to stay inside the scene when the scene is big enough
    (else it runs past the edge and the read pads it as invalid).
    """
    if hi - lo <= size:
        return [max(0, min(lo, extent - size))]
    starts = list(range(lo, hi - size, stride))
    starts.append(hi - size)
    return starts


def grid_cores(starts: list[int], lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """Owned interval of each tile: neighbours split their overlap at its middle."""
    bounds = [lo]
    for a, b in zip(starts, starts[1:]):
        bounds.append((b + a + size) // 2)
    bounds.append(hi)
    return list(zip(bounds[:-1], bounds[1:]))


class GridTileSampler(Sequence[Tile]):
    """Regular tiles of ``size`` every ``stride`` pixels over each scene (or its part in ``roi``).

    Args:
        scenes: paths or :class:`RasterSource` objects (any mix of CRSs).
        size: tile size in pixels, int or (height, width).
        stride: step between tiles, int or (height, width); ``stride < size`` overlaps tiles.
            Defaults to ``size``. Must be between 1 and ``size`` so no pixel is skipped.
        roi: region of interest, a shapely geometry or (left, bottom, right, top) in ``roi_crs``
            (default: each scene's own CRS).
        source_kwargs: passed to :class:`RasterSource` for scenes given as paths (``res=``,
            ``crs=``, ``require_georef=`` ...).

    Every pixel of the region lies in at least one tile window and in exactly one tile core;
    the last row/column of tiles is snapped to the region's edge.
    """

    def __init__(self, scenes: Sequence[SceneLike], size: int | Sequence[int],
                 stride: int | Sequence[int] | None = None, roi=None, roi_crs=None,
                 **source_kwargs: Any):
        self.sources = as_sources(scenes, **source_kwargs)
        self.size = _pair(size)
        self.stride = self.size if stride is None else _pair(stride)
        for s, z in zip(self.stride, self.size):
            if not 1 <= s <= z:
                raise ConfigError(f"{self.stride} must be between 1 and size {self.size}", key="stride")
        self.tiles: list[Tile] = []
        for index, source in enumerate(self.sources):
            self.tiles.extend(self._scene_tiles(index, source, roi, roi_crs))

    def _scene_tiles(self, index: int, source: RasterSource, roi, roi_crs) -> list[Tile]:
        region, geometry = _region(source, roi, roi_crs)
        if region is None:
            return []
        row0, row1, col0, col1 = region
        (th, tw), (sh, sw) = self.size, self.stride
        rows = grid_starts(row0, row1, th, sh, source.shape[0])
        cols = grid_starts(col0, col1, tw, sw, source.shape[1])
        row_cores = grid_cores(rows, row0, row1, th)
        col_cores = grid_cores(cols, col0, col1, tw)
        tiles = []
        for r, (cr0, cr1) in zip(rows, row_cores):
            for c, (cc0, cc1) in zip(cols, col_cores):
                window = (c, r, tw, th)
                if _touches(source, window, geometry):
                    tiles.append(Tile(index, window, (cc0, cr0, cc1 - cc0, cr1 - cr0)))
        return tiles

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, i: int) -> Tile:
        return self.tiles[i]


class RandomTileSampler(Sequence[Tile]):
    """``length`` random tiles per epoch, scenes drawn in proportion to their (ROI) area.

    Tile ``i`` of epoch ``e`` depends only on ``(seed, e, i)``, so any worker can compute any
    tile and a resumed run repeats the same tiles. Call :meth:`set_epoch` for fresh tiles.
    ``core`` equals ``window`` (random tiles may overlap; they are for training).
    """

    def __init__(self, scenes: Sequence[SceneLike], size: int | Sequence[int], length: int,
                 roi=None, roi_crs=None, seed: int = 0, **source_kwargs: Any):
        self.sources = as_sources(scenes, **source_kwargs)
        self.size = _pair(size)
        self.length = int(length)
        self.seed = int(seed)
        self.epoch = 0
        self._regions, self._geometries, areas = [], [], []
        for source in self.sources:
            region, geometry = _region(source, roi, roi_crs)
            self._regions.append(region)
            self._geometries.append(geometry)
            areas.append(0 if region is None else (region[1] - region[0]) * (region[3] - region[2]))
        total = float(sum(areas))
        if total == 0:
            raise ValueError("the region of interest does not overlap any scene")
        self._weights = np.asarray(areas, dtype=np.float64) / total

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Tile:
        if not 0 <= i < self.length:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        th, tw = self.size
        # Non-rectangular ROIs: redraw until the tile touches the ROI itself, not its envelope.
        for _ in range(100):
            scene = int(rng.choice(len(self.sources), p=self._weights))
            row0, row1, col0, col1 = self._regions[scene]
            height, width = self.sources[scene].shape
            row = self._draw(rng, row0, row1, th, height)
            col = self._draw(rng, col0, col1, tw, width)
            window = (col, row, tw, th)
            if _touches(self.sources[scene], window, self._geometries[scene]):
                return Tile(scene, window, window)
        raise ValueError("could not draw a tile touching the region of interest in 100 tries")

    @staticmethod
    def _draw(rng: np.random.Generator, lo: int, hi: int, size: int, extent: int) -> int:
        if hi - lo <= size:
            return max(0, min(lo, extent - size))
        return int(rng.integers(lo, hi - size + 1))
