"""`facetvlp inspect` for OpenStreetMap extracts and OSM-derived GeoJSON.

The summary counts elements by type (all of them, and those with descriptive tags), lists the
most common tags and keys, and gives the bounds of the data (and of the file header, when the
extract declares one). Editor names and user ids in OSM metadata are never reported.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import osmium

from facetvlp.core.inspect import register_inspector

from .osm import GEOJSON_SUFFIXES, OSM_SUFFIXES, OSMReadError, check_osm_file, read_osm_geojson

TOP = 10


@register_inspector(suffixes=OSM_SUFFIXES)  # the suffixes read_osm_layer reads
def summarise_osm(path: str) -> dict[str, Any]:
    path = os.fspath(path)
    check_osm_file(path)
    counts = collections.Counter()
    tagged = collections.Counter()
    tags = collections.Counter()
    keys = collections.Counter()
    lon_min = lat_min = float("inf")
    lon_max = lat_max = float("-inf")
    try:
        processor = osmium.FileProcessor(path)
        header = processor.header
        for obj in processor:
            kind = obj.type_str()
            kind = {"n": "node", "w": "way", "r": "relation"}[kind]
            counts[kind] += 1
            if kind == "node" and obj.location.valid():
                lon_min, lon_max = min(lon_min, obj.lon), max(lon_max, obj.lon)
                lat_min, lat_max = min(lat_min, obj.lat), max(lat_max, obj.lat)
            if len(obj.tags):
                tagged[kind] += 1
                for tag in obj.tags:
                    keys[tag.k] += 1
                    tags[f"{tag.k}={tag.v}"] += 1
    except RuntimeError as exc:
        raise OSMReadError(path, f"pyosmium cannot read it: {exc}") from exc
    summary: dict[str, Any] = {
        "kind": "osm",
        "format": _format_name(path),
        "elements": {k: counts.get(k, 0) for k in ("node", "way", "relation")},
        "tagged": {k: tagged.get(k, 0) for k in ("node", "way", "relation")},
        "top_tags": dict(tags.most_common(TOP)),
        "top_keys": dict(keys.most_common(TOP)),
        "bounds": [lon_min, lat_min, lon_max, lat_max] if counts.get("node") and lon_min <= lon_max else None,
        "crs": "OGC:CRS84",
    }
    box = header.box()
    if box.valid():
        summary["header_bounds"] = [box.bottom_left.lon, box.bottom_left.lat,
                                    box.top_right.lon, box.top_right.lat]
    return summary


@register_inspector(suffixes=GEOJSON_SUFFIXES)
def summarise_osm_geojson(path: str) -> dict[str, Any]:
    layer = read_osm_geojson(path, keep_untagged=True)
    kinds = collections.Counter(f.kind for f in layer)
    types = collections.Counter(f.osm_type for f in layer)
    tags = collections.Counter(f"{k}={v}" for f in layer for k, v in f.tags.items())
    keys = collections.Counter(k for f in layer for k in f.tags)
    return {
        "kind": "geojson",
        "features": len(layer),
        "tagged": sum(1 for f in layer if f.tags),
        "geometry": {k: kinds.get(k, 0) for k in ("point", "line", "area")},
        "osm_types": dict(types),
        "top_tags": dict(tags.most_common(TOP)),
        "top_keys": dict(keys.most_common(TOP)),
        "bounds": list(layer.bounds) if len(layer) else None,
        "crs": layer.crs.to_string(),
    }


def _format_name(path: str) -> str:
    name = path.lower()
    if name.endswith(".pbf"):
        return "pbf"
    if name.endswith(".bz2"):
        return "xml+bz2"
    if name.endswith(".gz"):
        return "xml+gzip"
    return "xml"
