"""Windowed reading of GeoTIFFs (and any raster GDAL opens) with rasterio.

A :class:`RasterSource` keeps one rasterio handle open per process and reads any window of any
scene without loading the scene: only the blocks under the window are decoded. Windows are given
in pixels of the source's *grid*: the file's own grid, or, when a coarser resolution or another CRS
is asked for, a virtual grid at that resolution / CRS.

Conventions (also in docs/remote_sensing_raster.md):

- Bands are selected by 1-based index (as in rasterio / GDAL) or by name, matched without case
  against the band descriptions and then the colour interpretation ("red", "nir", "alpha" ...).
  The order asked for is the order returned.
- Boundless windows: a window may cross the scene edge (or lie outside it). Pixels outside the
  scene are filled with the fill value (the file's nodata, else 0) and are invalid in the mask.
  This is exactly what ``rasterio`` returns for ``read(window=..., boundless=True,
  fill_value=fill)``, only without building a VRT for every read.
- Validity mask (``sample["mask"]``, bool (H, W), True = valid): a pixel is valid when at least one
  selected band is valid under GDAL's band masks (nodata value, internal mask or alpha band) and
  it lies inside the scene -- GDAL's own rule for a dataset mask.
- Coarser resolution: in the file's CRS no VRT is built; the read asks GDAL for a smaller
  ``out_shape``, and GDAL serves it from the COG overview level that fits.
- Another CRS: the file is wrapped in a ``WarpedVRT`` -- only then; same CRS and resolution read
  the file directly.
- Normalisation, per band, to float32 (``normalize=``):
    ``"dtype"`` (default): integer data maps its storage range to [0, 1] (uint8 / 255,
      uint16 / 65535, int16 (x + 32768) / 65535 ...); float data passes through scale/offset.
    ``"none"``: physical values, ``raw * scale + offset`` from the file's band scales/offsets.
    ``{"mean": [...], "std": [...]}``: ``(physical - mean) / std`` per selected band.
    ``{"min": [...], "max": [...]}``: ``(physical - min) / (max - min)`` clipped to [0, 1]
      (e.g. 12-bit sensors stored as uint16).
  Invalid pixels are set to 0 after normalisation so nodata sentinels (-9999 ...) never reach
  a model; the mask says where they were.

Footprint of a tile for clipping vectors (OpenStreetMap ...): every sample's ``meta`` carries
``crs`` ("EPSG:xxxx" or WKT), ``transform`` (the tile's own affine, 6 floats a, b, c, d, e, f as
in ``affine.Affine``) and ``bounds`` (left, bottom, right, top in that CRS); use
:func:`tile_footprint` to get it as a shapely polygon plus its CRS.
"""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import rasterio
import shapely
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window

from facetvlp.core.errors import ConfigError, ReadError

BandSpec = int | str
WindowLike = Window | Sequence[float]

#: suffixes of the raster files a scene folder is searched for (and `facetvlp inspect` takes):
#: GeoTIFF / COG under their usual names, JPEG 2000, ERDAS Imagine, GDAL VRT
RASTER_SUFFIXES = (".tif", ".tiff", ".geotiff", ".gtiff", ".cog", ".jp2", ".j2k", ".img", ".vrt")


class RasterReadError(ReadError):
    """A raster file could not be read into a sample."""


class NotARasterError(RasterReadError):
    """GDAL does not recognise the file as a raster (a text file named .tif, a vector GeoPackage)."""


class NoGeoreferenceError(RasterReadError):
    """The raster has no CRS or no geotransform, and georeferencing is required."""


def scene_paths(scenes: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Scene files from a folder (its rasters, recursively, sorted), a glob pattern (sorted),
    one file, or a list of files (kept as given)."""
    if not isinstance(scenes, (str, os.PathLike)):
        return [os.fspath(p) for p in scenes]
    text = os.fspath(scenes)
    if os.path.isdir(text):
        found = sorted(str(p) for p in Path(text).rglob("*")
                       if p.is_file() and p.name.lower().endswith(RASTER_SUFFIXES))
        if not found:
            raise ConfigError(f"no raster files ({', '.join(RASTER_SUFFIXES)}) under {text}")
        return found
    if glob.has_magic(text):
        found = sorted(glob.glob(text, recursive=True))
        if not found:
            raise ConfigError(f"no raster files match {text}")
        return found
    return [text]


class TruncatedRasterError(RasterReadError):
    """The file ends before its header or its pixel blocks do."""


class BandMismatchError(RasterReadError):
    """Asked-for bands do not exist, or scenes that must agree have different band counts."""


# GDAL reports a cut file through libtiff messages; these fragments identify them.
_TRUNCATION_HINTS = ("read error", "failed to read directory", "ireadblock failed", "got 0 bytes",
                     "tiffreadencoded", "tifffill", "cannot read", "short read", "premature end")


def _error_chain(exc: BaseException) -> str:
    """All messages of an exception chain: rasterio hides GDAL's reason in the chained causes."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(p for p in parts if p)


def raster_error(path: str, exc: BaseException, doing: str) -> RasterReadError:
    """The typed error for a rasterio failure while `doing` something with `path`."""
    chain = _error_chain(exc)
    low = chain.lower()
    if "not recognized as" in low or "not a supported file format" in low:
        return NotARasterError(path, f"not a raster GDAL can read ({chain})")
    if any(h in low for h in _TRUNCATION_HINTS):
        return TruncatedRasterError(path, f"truncated or corrupt while {doing} ({chain})")
    if "no such file" in low or not os.path.exists(path):
        return RasterReadError(path, "no such file")
    return RasterReadError(path, f"{doing} failed ({chain})")


def crs_to_str(crs: CRS | None) -> str | None:
    """'EPSG:xxxx' when the CRS is exactly an EPSG code, else WKT (never a lossy guess)."""
    if crs is None:
        return None
    code = crs.to_epsg(confidence_threshold=100)
    return f"EPSG:{code}" if code is not None else crs.to_wkt()


def has_georeference(ds) -> bool:
    return ds.crs is not None and not ds.transform.is_identity


def as_window(window: WindowLike) -> Window:
    """A rasterio Window from a Window or (col_off, row_off, width, height)."""
    if isinstance(window, Window):
        return window
    col_off, row_off, width, height = window
    return Window(col_off, row_off, width, height)


def tile_footprint(meta: Mapping[str, Any]) -> tuple[shapely.Polygon, str]:
    """The ground covered by a sample as (polygon in the sample's CRS, CRS string).

    Built from the tile transform's four corners, so it is exact for rotated grids too (where
    ``meta["bounds"]`` is only the envelope). Reproject it with pyproj /
    ``rasterio.warp.transform_geom`` when the vectors are in another CRS.
    """
    transform = Affine(*meta["transform"])
    height, width = meta["shape"]
    corners = [transform @ xy for xy in ((0, 0), (width, 0), (width, height), (0, height))]
    return shapely.Polygon(corners), meta["crs"]


def open_raster(path: str | os.PathLike, require_georef: bool = False):
    """``rasterio.open`` with typed errors naming the file and the reason."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RasterReadError(path, "no such file")
    if os.path.isdir(path):
        raise RasterReadError(path, "is a directory, not a raster file")
    try:
        with warnings.catch_warnings():
            # Plain JPG/PNG scenes are expected to lack georeferencing; the check below
            # raises when it is required, so the warning only adds noise.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        raise raster_error(path, exc, "opening") from exc
    if require_georef and not has_georeference(ds):
        ds.close()
        raise NoGeoreferenceError(path, "no CRS or geotransform in the file, and "
                                  "georeferencing is required (require_georef=True)")
    return ds


@dataclass
class RasterWindow:
    """Raw pixels of one window plus what is needed to georeference and normalise them."""

    data: np.ndarray  # (C, H, W) in the file's dtype
    valid: np.ndarray  # (H, W) bool
    transform: Affine  # of this window's pixels
    window: Window  # in the source grid
    bands: list[int]  # 1-based band indexes read


class RasterSource:
    """One raster scene, opened lazily once per process and kept open between reads.

    Args:
        path: any file GDAL opens as a raster.
        require_georef: raise :class:`NoGeoreferenceError` when the file has no CRS/transform.
        crs: target CRS; a ``WarpedVRT`` is used only when it differs from the file's CRS.
        res: target resolution (one number or (x, y), in CRS units). In the file's CRS a coarser
            resolution is read through ``out_shape`` (COG overviews); no VRT.
        resampling: rasterio resampling name for any resampled read; None (default) picks
            ``average`` when a read coarsens the file's grid (output pixels larger than the file's,
            so each one is the mean of what it covers, not one aliased sample) and ``nearest``
            otherwise.

    The handle is not pickled: a DataLoader worker reopens the file on its first read, and a forked
    child never reuses its parent's GDAL handle.
    """

    def __init__(self, path: str | os.PathLike, *, require_georef: bool = True,
                 crs: str | CRS | None = None, res: float | Sequence[float] | None = None,
                 resampling: str | None = None):
        self.path = os.fspath(path)
        self.require_georef = require_georef
        self.target_crs = CRS.from_user_input(crs) if crs is not None else None
        self.target_res = None if res is None else (
            (float(res), float(res)) if np.isscalar(res) else (float(res[0]), float(res[1])))
        self.resampling = Resampling[resampling] if resampling is not None else None
        self._handle = None
        self._file = None
        self._pid = None
        self._describe()

    # -- opening -------------------------------------------------------------------------------

    def _open_file(self):
        return open_raster(self.path, require_georef=self.require_georef)

    def _describe(self) -> None:
        """Open once to learn the grid; decides whether a WarpedVRT is needed."""
        ds = self._open_file()
        try:
            self.count = ds.count
            self.dtype = np.dtype(ds.dtypes[0])
            self.file_crs = ds.crs
            self.file_transform = ds.transform
            self.file_shape = (ds.height, ds.width)
            self.nodata = ds.nodata
            self.descriptions = tuple(ds.descriptions)
            self.colorinterp = tuple(ci.name for ci in ds.colorinterp)
            self.scales = np.asarray(ds.scales, dtype=np.float64)
            self.offsets = np.asarray(ds.offsets, dtype=np.float64)
            self.mask_flags = tuple(tuple(flags) for flags in ds.mask_flag_enums)
            if len(set(ds.dtypes)) > 1:
                raise BandMismatchError(self.path, f"bands have different dtypes {ds.dtypes}")
            self.warped = self.target_crs is not None and self.target_crs != ds.crs
            self._factor = (1.0, 1.0)
            if self.warped:
                left, bottom, right, top = ds.bounds
                transform, width, height = calculate_default_transform(
                    ds.crs, self.target_crs, ds.width, ds.height, left, bottom, right, top,
                    resolution=self.target_res)
                self._vrt_grid = (transform, width, height)
                native, _, _ = calculate_default_transform(ds.crs, self.target_crs, ds.width, ds.height,
                                                           left, bottom, right, top)
                self._warp_coarsens = abs(transform.a) > abs(native.a) * (1 + 1e-6)
                self.crs, self.transform, self.shape = self.target_crs, transform, (height, width)
            else:
                self.crs = ds.crs
                if self.target_res is not None:
                    native = (abs(ds.transform.a), abs(ds.transform.e))
                    self._factor = (self.target_res[0] / native[0], self.target_res[1] / native[1])
                fx, fy = self._factor
                self.transform = ds.transform @ Affine.scale(fx, fy)
                self.shape = (int(round(ds.height / fy)), int(round(ds.width / fx)))
        finally:
            ds.close()

    @property
    def handle(self):
        """The open dataset (or WarpedVRT) for this process."""
        if self._handle is None or self._pid != os.getpid():
            self._file = self._open_file()
            if self.warped:
                transform, width, height = self._vrt_grid
                # An alpha band marks warped-in emptiness when the file has no nodata to use.
                self._handle = WarpedVRT(self._file, crs=self.target_crs, transform=transform,
                                         width=width, height=height,
                                         resampling=self._resampling(self._warp_coarsens),
                                         add_alpha=self.nodata is None)
            else:
                self._handle = self._file
            self._pid = os.getpid()
        return self._handle

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            if self._handle is not self._file:
                self._handle.close()
            self._file.close()
        self._handle = self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = state["_file"] = state["_pid"] = None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: rasterio may already be gone
            pass

    # -- bands ---------------------------------------------------------------------------------

    def band_indexes(self, bands: Sequence[BandSpec] | BandSpec | None = None) -> list[int]:
        """1-based band indexes for indexes and/or names, in the order asked."""
        if bands is None:
            return list(range(1, self.count + 1))
        if isinstance(bands, (int, str)):
            bands = [bands]
        indexes = []
        for band in bands:
            if isinstance(band, (int, np.integer)) and not isinstance(band, bool):
                if not 1 <= band <= self.count:
                    raise BandMismatchError(
                        self.path, f"band index {band} out of range: the file has {self.count} "
                        "band(s), indexed from 1")
                indexes.append(int(band))
            elif isinstance(band, str):
                indexes.append(self._band_by_name(band))
            else:
                raise BandMismatchError(self.path, f"band {band!r} is neither an index nor a name")
        return indexes

    def _band_by_name(self, name: str) -> int:
        wanted = name.strip().lower()
        for names in (self.descriptions, self.colorinterp):
            hits = [i for i, n in enumerate(names, 1) if n and n.lower() == wanted]
            if len(hits) == 1:
                return hits[0]
        known = [d for d in self.descriptions if d] + [c for c in self.colorinterp
                                                       if c not in ("undefined", "gray")]
        raise BandMismatchError(self.path, f"no band named {name!r}; named bands: "
                                f"{', '.join(known) or '(none: select by index)'}")

    # -- reading -------------------------------------------------------------------------------

    @property
    def fill_value(self) -> float:
        return self.nodata if self.nodata is not None else 0

    def window_transform(self, window: WindowLike) -> Affine:
        window = as_window(window)
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def window_from_bounds(self, bounds: Sequence[float], crs: str | CRS | None = None) -> Window:
        """The pixel window (in this source's grid) covering ``bounds`` given in ``crs``."""
        if crs is not None and CRS.from_user_input(crs) != self.crs:
            bounds = transform_bounds(CRS.from_user_input(crs), self.crs, *bounds, densify_pts=21)
        return rasterio.windows.from_bounds(*bounds, transform=self.transform)

    def read(self, window: WindowLike | None = None,
             bands: Sequence[BandSpec] | BandSpec | None = None,
             out_shape: Sequence[int] | None = None) -> RasterWindow:
        """Raw pixels and validity of ``window`` (default: the whole grid) for ``bands``.

        ``out_shape=(height, width)`` resamples the window to that size in the read (GDAL
        picks the overview level); by default the window is read at the grid's resolution.
        """
        window = as_window(window) if window is not None else Window(0, 0, self.shape[1],
                                                                      self.shape[0])
        indexes = self.band_indexes(bands)
        height, width = int(round(window.height)), int(round(window.width))
        if out_shape is not None:
            height, width = int(out_shape[0]), int(out_shape[1])
        transform = self.window_transform(window) @ Affine.scale(window.width / width,
                                                                 window.height / height)
        try:
            if self._factor == (1.0, 1.0) and (height, width) == (
                    round(window.height), round(window.width)):
                data, valid = self._read_native(window, indexes, height, width)
            else:
                data, valid = self._read_resampled(window, indexes, height, width)
        except RasterioIOError as exc:
            raise raster_error(self.path, exc, f"reading window {_window_tuple(window)}") from exc
        return RasterWindow(data, valid, transform, window, indexes)

    def _read_native(self, window: Window, indexes: list[int], height: int, width: int):
        ds = self.handle
        col, row = int(round(window.col_off)), int(round(window.row_off))
        full_h, full_w = self.shape
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + width, full_w), min(row + height, full_h)
        if c0 == col and r0 == row and c1 == col + width and r1 == row + height:
            inner = Window(col, row, width, height)
            data = ds.read(indexes, window=inner)
            return data, self._valid(ds, data, indexes, inner)
        # Crossing the edge: read the part inside the scene and paste it into a filled array;
        # the same pixels rasterio's boundless read gives, without its per-read VRT.
        data = np.full((len(indexes), height, width), self.fill_value, dtype=self.dtype)
        valid = np.zeros((height, width), dtype=bool)
        if c1 > c0 and r1 > r0:
            inner = Window(c0, r0, c1 - c0, r1 - r0)
            part = ds.read(indexes, window=inner)
            dst = (slice(None), slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
            data[dst] = part
            valid[dst[1:]] = self._valid(ds, part, indexes, inner)
        return data, valid

    def _valid(self, ds, data: np.ndarray, indexes: list[int], window: Window) -> np.ndarray:
        flags = [self._flags(ds, i) for i in indexes]
        if all(MaskFlags.all_valid in f for f in flags):
            return np.ones(data.shape[1:], dtype=bool)
        if all(MaskFlags.nodata in f for f in flags):
            # Same test GDAL's nodata mask makes, without a second read.
            bad = np.empty(data.shape, dtype=bool)
            for k, index in enumerate(indexes):
                nodata = float(ds.nodatavals[index - 1])
                bad[k] = np.isnan(data[k]) if np.isnan(nodata) else data[k] == nodata
            return ~bad.all(axis=0)
        return ds.read_masks(indexes, window=window).any(axis=0)

    def _resampling(self, coarsens: bool) -> Resampling:
        if self.resampling is not None:
            return self.resampling
        return Resampling.average if coarsens else Resampling.nearest

    def _flags(self, ds, index: int):
        return self.mask_flags[index - 1] if ds is self._file else ds.mask_flag_enums[index - 1]

    def _read_resampled(self, window: Window, indexes: list[int], height: int, width: int):
        # Map the window of the (coarse) grid to the file's grid; GDAL picks the overview.
        fx, fy = self._factor
        native = Window(window.col_off * fx, window.row_off * fy, window.width * fx,
                        window.height * fy)
        full_h, full_w = self.file_shape
        inside = (native.col_off >= 0 and native.row_off >= 0
                  and native.col_off + native.width <= full_w + 1e-6
                  and native.row_off + native.height <= full_h + 1e-6)
        ds = self.handle
        coarsens = height < native.height - 1e-6 or width < native.width - 1e-6
        kwargs = dict(window=native, out_shape=(len(indexes), height, width),
                      resampling=self._resampling(coarsens))
        if not inside:
            kwargs.update(boundless=True, fill_value=self.fill_value)
        data = ds.read(indexes, **kwargs)
        valid = ds.read_masks(indexes, **kwargs).any(axis=0)
        return data, valid


def _window_tuple(window: Window) -> list[float]:
    return [float(window.col_off), float(window.row_off), float(window.width),
            float(window.height)]


# -- normalisation -------------------------------------------------------------------------------


def normalise(data: np.ndarray, valid: np.ndarray, *, normalize: str | Mapping = "dtype",
              scales: Sequence[float] | None = None,
              offsets: Sequence[float] | None = None) -> np.ndarray:
    """Raw (C, H, W) pixels to float32 by the rule in the module docstring."""
    channels = data.shape[0]
    scales = np.ones(channels) if scales is None else np.asarray(scales, dtype=np.float64)
    offsets = np.zeros(channels) if offsets is None else np.asarray(offsets, dtype=np.float64)
    if normalize == "dtype" and np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        out = (data.astype(np.float32) - np.float32(info.min)) / np.float32(info.max - info.min)
    else:
        out = data.astype(np.float32)
        if not (np.all(scales == 1) and np.all(offsets == 0)):
            out = out * scales[:, None, None].astype(np.float32) + offsets[:, None, None].astype(
                np.float32)
        if isinstance(normalize, Mapping):
            out = _normalise_by_stats(out, normalize)
        elif normalize not in ("dtype", "none"):
            raise ValueError(f"normalize must be 'dtype', 'none', {{'mean','std'}} or "
                             f"{{'min','max'}}, got {normalize!r}")
    out[:, ~valid] = 0.0
    return out


def _normalise_by_stats(out: np.ndarray, stats: Mapping) -> np.ndarray:
    channels = out.shape[0]

    def per_band(key):
        values = np.asarray(stats[key], dtype=np.float32).reshape(-1)
        if values.size not in (1, channels):
            raise ValueError(f"normalize[{key!r}] has {values.size} values for {channels} bands")
        return np.broadcast_to(values, (channels,))[:, None, None]

    if {"mean", "std"} <= set(stats):
        return (out - per_band("mean")) / per_band("std")
    if {"min", "max"} <= set(stats):
        lo, hi = per_band("min"), per_band("max")
        return np.clip((out - lo) / (hi - lo), 0.0, 1.0)
    raise ValueError(f"normalize dict needs 'mean'+'std' or 'min'+'max', got {sorted(stats)}")


# -- samples ---------------------------------------------------------------------------------------


def window_sample(source: RasterSource, window: WindowLike | None,
                  bands: Sequence[BandSpec] | BandSpec | None = None,
                  normalize: str | Mapping = "dtype",
                  out_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """A sample dict (``image``, ``mask`` = validity, ``meta``) for one window of a source,
    optionally resampled to ``out_shape`` (height, width)."""
    raw = source.read(window, bands, out_shape)
    idx = [b - 1 for b in raw.bands]
    image = normalise(raw.data, raw.valid, normalize=normalize,
                      scales=source.scales[idx], offsets=source.offsets[idx])
    height, width = raw.valid.shape
    t = raw.transform
    return {
        "image": torch.from_numpy(image),
        "mask": torch.from_numpy(raw.valid),
        "meta": {
            "source": source.path,
            "crs": crs_to_str(source.crs),
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "bounds": list(rasterio.windows.bounds(Window(0, 0, width, height), t)),
            "shape": [height, width],
            "window": _window_tuple(raw.window),
            "bands": raw.bands,
            "res": [float(np.hypot(t.a, t.d)), float(np.hypot(t.b, t.e))],
            "nodata": None if source.nodata is None or np.isnan(source.nodata) else float(
                source.nodata),
            "valid_fraction": float(raw.valid.mean()) if raw.valid.size else 0.0,
        },
    }


def resize_sample(sample: dict[str, Any], size: Sequence[int]) -> dict[str, Any]:
    """Resize a :func:`window_sample` to ``size`` (height, width) for a model: ``image``
    bilinear (antialiased), ``mask`` nearest, and ``meta`` ``transform``/``shape``/``res`` made
    to describe the resized grid (same ground, bigger or smaller pixels), so a prediction on
    the model grid is georeferenced by ``meta`` as it is; ``meta["window"]`` stays the window
    read from the source grid."""
    height, width = int(size[0]), int(size[1])
    old_h, old_w = sample["image"].shape[-2:]
    if (old_h, old_w) == (height, width):
        return sample
    import torch.nn.functional as F

    sample["image"] = F.interpolate(sample["image"][None], size=(height, width), mode="bilinear",
                                    antialias=True, align_corners=False)[0]
    if "mask" in sample:
        sample["mask"] = F.interpolate(sample["mask"][None, None].float(), size=(height, width),
                                       mode="nearest-exact")[0, 0].bool()
    meta = sample["meta"]
    t = Affine(*meta["transform"][:6]) * Affine.scale(old_w / width, old_h / height)
    meta.update(transform=[t.a, t.b, t.c, t.d, t.e, t.f], shape=[height, width],
                res=[float(np.hypot(t.a, t.d)), float(np.hypot(t.b, t.e))])
    return sample


def read_window(path: str | os.PathLike, window: WindowLike | None = None, *,
                bands: Sequence[BandSpec] | BandSpec | None = None,
                normalize: str | Mapping = "dtype", out_shape: Sequence[int] | None = None,
                **source_kwargs: Any) -> dict[str, Any]:
    """One-shot :func:`window_sample` on a file (opens and closes it; use a
    :class:`RasterSource` to read many windows of the same scene)."""
    source = RasterSource(path, **source_kwargs)
    try:
        if window is None:
            window = Window(0, 0, source.shape[1], source.shape[0])
        return window_sample(source, window, bands, normalize, out_shape)
    finally:
        source.close()


def scene_bounds(source: RasterSource, crs: str | CRS | None = None) -> tuple[float, ...]:
    """Bounds of the whole source grid, optionally in another CRS."""
    bounds = rasterio.windows.bounds(Window(0, 0, source.shape[1], source.shape[0]),
                                     source.transform)
    if crs is not None and CRS.from_user_input(crs) != source.crs:
        bounds = transform_bounds(source.crs, CRS.from_user_input(crs), *bounds, densify_pts=21)
    return tuple(float(b) for b in bounds)
