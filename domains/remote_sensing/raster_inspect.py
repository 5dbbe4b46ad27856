"""`facetvlp inspect` for rasters: GeoTIFF / COG, JPEG 2000, ERDAS .img, VRT, and TIFFs
without a telling suffix (sniffed by their magic bytes)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from facetvlp.core.inspect import register_inspector

from .geotiff import RASTER_SUFFIXES, crs_to_str, has_georeference, open_raster, raster_error

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF


def looks_like_tiff(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in TIFF_MAGIC
    except OSError:
        return False


def _number(value):
    """JSON-able number: None for NaN/None, int when integral."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value) if float(value).is_integer() else float(value)


@register_inspector(suffixes=RASTER_SUFFIXES, sniff=looks_like_tiff)
def summarise_raster(path: str) -> dict[str, Any]:
    """Size, bands, dtypes, nodata, overviews, CRS, transform and bounds of a raster.

    Reads the last block of band 1 as well, so a truncated file is reported as such
    (TruncatedRasterError) instead of looking healthy from its header.
    """
    path = os.fspath(path)
    with open_raster(path) as ds:
        try:
            last_row = ds.height - 1
            last_col = ds.width - 1
            ds.read(1, window=Window(last_col, last_row, 1, 1))
        except RasterioIOError as exc:
            raise raster_error(path, exc, "reading its last block") from exc
        georeferenced = has_georeference(ds)
        summary: dict[str, Any] = {
            "kind": "raster",
            "file": os.path.basename(path),
            "driver": ds.driver,
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "dtypes": list(ds.dtypes),
            "crs": crs_to_str(ds.crs),
            "georeferenced": georeferenced,
            "transform": list(ds.transform)[:6],
            "res": [float(ds.res[0]), float(ds.res[1])],
            "bounds": [float(b) for b in ds.bounds],
            "nodata": _number(ds.nodata),
            "compression": ds.compression.name if ds.compression else None,
            "interleave": ds.interleaving.name if ds.interleaving else None,
            "tiled": bool(ds.profile.get("tiled", False)),
            "layout": ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"),
            "overviews": ds.overviews(1) if ds.count else [],
            "gcps": len(ds.gcps[0]),
            "bands": [
                {
                    "index": i,
                    "dtype": ds.dtypes[i - 1],
                    "description": ds.descriptions[i - 1],
                    "colorinterp": ds.colorinterp[i - 1].name,
                    "nodata": _number(ds.nodatavals[i - 1]),
                    "scale": _number(ds.scales[i - 1]),
                    "offset": _number(ds.offsets[i - 1]),
                    "block_shape": list(ds.block_shapes[i - 1]),
                    "overviews": ds.overviews(i),
                    "mask": [flag.name for flag in ds.mask_flag_enums[i - 1]],
                }
                for i in range(1, ds.count + 1)
            ],
        }
        if georeferenced:
            summary["bounds_lonlat"] = [float(b) for b in transform_bounds(
                ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)]
    return summary
