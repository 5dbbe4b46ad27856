"""OpenStreetMap features as shapely geometries, ready to lay over a raster tile.

Two sources give the same :class:`OSMLayer`:

- ``.osm`` / ``.osm.bz2`` / ``.osm.pbf`` read with pyosmium: tagged nodes become points, open
  ways lines, and closed ways / multipolygon relations areas, assembled by osmium's own area
  assembler (so holes and multi-part relations come out right).
- GeoJSON derived from OSM (Overpass / osmtogeojson, HOT export tool, fAIr label files): tags
  come from the feature properties.

A layer is reprojected once to the raster's CRS (pyproj, vectorised through ``shapely.transform``)
and then clipped per tile through an STR-tree, so a scene cut into many tiles does not test every
feature against every tile.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import osmium
import pyproj
import shapely
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from facetvlp.core.errors import ReadError

OSM_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".osm.pbf", ".pbf")
GEOJSON_SUFFIXES = (".geojson", ".json")

#: GeoJSON (RFC 7946) and OSM are longitude/latitude on WGS84
LONLAT = pyproj.CRS.from_user_input("OGC:CRS84")

# Keys that describe an object's history or editing rather than what it is; a node with only
# these is not a mapped thing.
_META_KEYS = frozenset({"created_by", "source", "note", "fixme", "FIXME", "comment", "attribution"})


class OSMReadError(ReadError):
    """An OSM extract or OSM-derived GeoJSON cannot be read into features."""


@dataclass(frozen=True)
class OSMFeature:
    """One mapped object: its OSM identity (when known), its tags and its geometry."""

    osm_type: str  # "node", "way", "relation", or "feature" for GeoJSON without OSM identity
    osm_id: int | None
    tags: Mapping[str, str]
    geometry: BaseGeometry

    @property
    def kind(self) -> str:
        """"point", "line" or "area": the geometry class the iD presets are keyed by."""
        dim = shapely.get_dimensions(self.geometry)
        return ("point", "line", "area")[int(dim)] if dim >= 0 else "point"

    @property
    def ref(self) -> str:
        """Stable id for manifests and tests ("way/123"), or "" when the source had none."""
        return f"{self.osm_type}/{self.osm_id}" if self.osm_id is not None else ""


class OSMLayer:
    """A set of OSM features in one CRS, with reprojection and per-tile clipping."""

    def __init__(self, features: Sequence[OSMFeature], crs: Any = LONLAT, source: str = ""):
        self.features = list(features)
        self.crs = pyproj.CRS.from_user_input(_crs_input(crs))
        self.source = source
        #: areas osmium could not assemble (rings cut open by the extract boundary); left out
        self.unassembled = 0
        self._tree: shapely.STRtree | None = None

    def __len__(self) -> int:
        return len(self.features)

    def __iter__(self) -> Iterator[OSMFeature]:
        return iter(self.features)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of every feature, in the layer's CRS."""
        if not self.features:
            raise ValueError(f"{self.source or 'OSM layer'} has no features, so no bounds")
        return tuple(shapely.total_bounds(self._geometries()).tolist())

    def to_crs(self, crs: Any) -> "OSMLayer":
        """The same features reprojected to ``crs`` (anything pyproj or rasterio accepts)."""
        target = pyproj.CRS.from_user_input(_crs_input(crs))
        if self.crs.equals(target, ignore_axis_order=True):
            return self._with(self.features, target)
        # always_xy keeps x=easting/longitude whatever axis order the CRS definitions declare
        transformer = pyproj.Transformer.from_crs(self.crs, target, always_xy=True)
        moved = shapely.transform(
            self._geometries(), lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        )
        features = [replace(f, geometry=g) for f, g in zip(self.features, moved)]
        return self._with(features, target)

    def _with(self, features: list[OSMFeature], crs: pyproj.CRS) -> "OSMLayer":
        layer = OSMLayer(features, crs, self.source)
        layer.unassembled = self.unassembled
        return layer

    def clip(self, footprint: BaseGeometry | Sequence[float]) -> list[OSMFeature]:
        """Features that touch ``footprint`` (a polygon, or bounds ``(minx, miny, maxx, maxy)`` in
        the layer's CRS), each cut to the part inside it."""
        if not isinstance(footprint, BaseGeometry):
            footprint = box(*footprint)
        if self._tree is None:
            self._tree = shapely.STRtree(self._geometries())
        hits = np.sort(self._tree.query(footprint, predicate="intersects"))
        clipped = []
        for index in hits:
            feature = self.features[index]
            inside = feature.geometry.intersection(footprint)
            # an area that only shares an edge with the tile leaves a line; that is not visible
            if inside.is_empty or shapely.get_dimensions(inside) < shapely.get_dimensions(feature.geometry):
                continue
            clipped.append(replace(feature, geometry=inside))
        return clipped

    def _geometries(self) -> np.ndarray:
        return np.array([f.geometry for f in self.features], dtype=object)


def read_osm_layer(path: str | os.PathLike, **kwargs: Any) -> OSMLayer:
    """Read any supported OSM source, chosen by suffix (see :func:`read_osm`, :func:`read_osm_geojson`)."""
    name = Path(path).name.lower()
    if name.endswith(GEOJSON_SUFFIXES):
        return read_osm_geojson(path, **kwargs)
    if name.endswith(OSM_SUFFIXES):
        return read_osm(path, **kwargs)
    raise OSMReadError(
        path, f"not an OSM file: expected one of {', '.join(OSM_SUFFIXES + GEOJSON_SUFFIXES)}"
    )


def read_osm(path: str | os.PathLike, keys: Iterable[str] | None = None) -> OSMLayer:
    """Read an .osm / .osm.bz2 / .osm.pbf extract into lon/lat features.

    Only objects that carry descriptive tags are kept; with ``keys`` only those that have one of
    these tag keys (e.g. ``("building", "landuse")``). Ways cut by the extract boundary keep the
    nodes whose location the extract holds; relations other than multipolygons (routes,
    restrictions) have no geometry of their own and are left out.
    """
    path = os.fspath(path)
    check_osm_file(path)
    wanted = frozenset(keys) if keys is not None else None
    factory = osmium.geom.WKBFactory()
    # geometries are made in bulk at the end: one shapely call per kind, not one per object
    nodes: list[tuple[int, dict]] = []
    node_xy: list[tuple[float, float]] = []
    ways: list[tuple[int, dict, bool]] = []
    way_coords: list[list[tuple[float, float]]] = []
    areas: list[tuple[str, int, dict]] = []
    area_wkb: list[bytes] = []
    unassembled = 0
    # untagged objects (way vertices, mostly) never reach Python; locations are still cached
    processor = osmium.FileProcessor(path).with_areas().with_filter(osmium.filter.EmptyTagFilter())
    if wanted is not None:
        processor = processor.with_filter(osmium.filter.KeyFilter(*wanted))
    try:
        for obj in processor:
            tags = _descriptive_tags(obj.tags)
            if not tags:
                continue
            if obj.is_node():
                if obj.location.valid():
                    nodes.append((obj.id, tags))
                    node_xy.append((obj.lon, obj.lat))
            elif obj.is_way():
                coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
                # a node listed twice in a row, or a way the extract cut to one spot, would
                # make an invalid line
                coords = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
                if len(coords) >= 2:
                    ways.append((obj.id, tags, obj.is_closed()))
                    way_coords.append(coords)
            elif obj.is_area():
                try:
                    area_wkb.append(factory.create_multipolygon(obj))
                except RuntimeError:
                    # a ring the extract boundary cut open: the object has no usable area here
                    unassembled += 1
                    continue
                areas.append(("way" if obj.from_way() else "relation", obj.orig_id(), tags))
    except RuntimeError as exc:
        # libosmium reports unreadable, truncated and wrongly-formatted files this way
        raise OSMReadError(path, f"pyosmium cannot read it: {exc}") from exc
    features = [
        OSMFeature("node", node_id, tags, point)
        for (node_id, tags), point in zip(nodes, shapely.points(np.asarray(node_xy).reshape(-1, 2)))
    ]
    area_geometries = shapely.from_wkb(np.asarray(area_wkb, dtype=object))
    area_of_way = {}
    for (kind, osm_id, tags), geometry in zip(areas, area_geometries):
        if kind == "way":
            area_of_way[osm_id] = OSMFeature("way", osm_id, tags, geometry)
    if way_coords:
        flat = np.concatenate([np.asarray(c) for c in way_coords])
        which = np.repeat(np.arange(len(way_coords)), [len(c) for c in way_coords])
        lines = shapely.linestrings(flat, indices=which)
    else:
        lines = []
    for (way_id, tags, closed), line in zip(ways, lines):
        area = area_of_way.get(way_id)
        if closed and area is not None and closed_way_is_area(tags):
            features.append(area)
        else:
            features.append(OSMFeature("way", way_id, tags, line))
    features.extend(
        OSMFeature("relation", osm_id, tags, geometry)
        for (kind, osm_id, tags), geometry in zip(areas, area_geometries)
        if kind == "relation"
    )
    layer = OSMLayer(features, LONLAT, source=path)
    layer.unassembled = unassembled
    return layer


def read_osm_geojson(
    path: str | os.PathLike,
    default_tags: Mapping[str, str] | None = None,
    keep_untagged: bool = False,
) -> OSMLayer:
    """Read OSM-derived GeoJSON (Overpass/osmtogeojson, HOT export, fAIr labels).

    ``default_tags`` fills in features that carry no tags at all, e.g. ``{"building": "yes"}`` for
    a file of building footprints that kept only the OSM id. Features left without tags are
    dropped unless ``keep_untagged``.
    """
    path = os.fspath(path)
    check_osm_file(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OSMReadError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise OSMReadError(path, "not a GeoJSON FeatureCollection")
    crs = _geojson_crs(path, data)
    features = []
    for number, item in enumerate(data.get("features") or []):
        if not isinstance(item, dict) or item.get("geometry") is None:
            continue
        try:
            geometry = shape(item["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
            raise OSMReadError(path, f"feature {number} has a malformed geometry: {exc}") from exc
        if geometry.is_empty:
            continue
        if not geometry.is_valid:
            # hand-drawn footprints self-intersect now and then; the area is still meant
            geometry = shapely.make_valid(geometry)
        osm_type, osm_id, tags = _geojson_identity_and_tags(item)
        if not tags and default_tags:
            tags = dict(default_tags)
        if tags or keep_untagged:
            features.append(OSMFeature(osm_type, osm_id, tags, geometry))
    return OSMLayer(features, crs, source=path)


def closed_way_is_area(tags: Mapping[str, str]) -> bool:
    """Whether a closed way means an area (a building, a park) rather than a ring-shaped line (a
    roundabout, a fence, a coastline), decided as the iD editor decides it (``osmWay.isArea``):
    ``area=yes/no`` first; otherwise an area when a tag's key is an area key of the bundled
    presets and its value is not one of that key's line values (:func:`.presets.area_keys`), or
    when the tag is one of iD's few area exceptions among line keys (``highway=services``,
    ``railway=station``, ``waterway=dam`` ...)."""
    from .presets import AREA_KEY_EXCEPTIONS, area_keys

    if tags.get("area") in ("yes", "no"):
        return tags["area"] == "yes"
    keys = area_keys()
    for key, value in tags.items():
        if key in keys and value not in keys[key]:
            return True
        if value in AREA_KEY_EXCEPTIONS.get(key, ()):
            return True
    return False


def _descriptive_tags(tags: osmium.osm.TagList) -> dict[str, str]:
    result = {t.k: t.v for t in tags}
    return {} if all(k in _META_KEYS for k in result) else result


def _geojson_identity_and_tags(item: dict) -> tuple[str, int | None, dict[str, str]]:
    props = item.get("properties") or {}
    if isinstance(props.get("tags"), dict):
        # osmtogeojson's older layout: {"type": "way", "id": 1, "tags": {...}, "meta": {...}}
        tags = {str(k): str(v) for k, v in props["tags"].items() if v is not None}
        return (*_identity(props.get("type"), props.get("id"), item.get("id")), tags)
    # flat layouts (Overpass turbo "@id", HOT "osm_id"/"osm_type", fAIr "osm_id"): every other
    # property with a value is a tag
    identity_keys = {"id", "osm_id", "osm_type", "osm_way_id", "type"}
    tags = {
        str(k): str(v)
        for k, v in props.items()
        if v is not None and not str(k).startswith("@") and k not in identity_keys
        and isinstance(v, (str, int, float))
    }
    osm_type = props.get("osm_type") or props.get("type")
    osm_id = props.get("osm_id", props.get("id"))
    return (*_identity(osm_type, osm_id, props.get("@id") or item.get("id")), tags)


def _identity(osm_type: Any, osm_id: Any, ref: Any) -> tuple[str, int | None]:
    """The OSM (type, id) from whichever of the several spellings an exporter used."""
    if isinstance(ref, str) and "/" in ref:
        kind, _, number = ref.partition("/")
        if kind in ("node", "way", "relation") and number.lstrip("-").isdigit():
            return kind, int(number)
    kind = str(osm_type) if osm_type is not None else ""
    # HOT exports name tables ("ways_poly", "nodes"); keep the OSM element type they stand for
    for element in ("node", "way", "relation"):
        if kind.startswith(element):
            kind = element
            break
    else:
        kind = "feature"
    if isinstance(osm_id, (int, float)) and not isinstance(osm_id, bool) and float(osm_id).is_integer():
        return kind, int(osm_id)
    if isinstance(osm_id, str) and osm_id.lstrip("-").isdigit():
        return kind, int(osm_id)
    return kind, None


def _geojson_crs(path: str, data: dict) -> pyproj.CRS:
    """RFC 7946 GeoJSON is lon/lat; GDAL still writes a legacy "crs" member for other CRSs."""
    member = data.get("crs")
    if not member:
        return LONLAT
    try:
        return pyproj.CRS.from_user_input(member["properties"]["name"])
    except (KeyError, TypeError, pyproj.exceptions.CRSError) as exc:
        raise OSMReadError(path, f"unreadable 'crs' member {member!r}: {exc}") from exc


def _crs_input(crs: Any) -> Any:
    # rasterio's CRS is not a pyproj CRS; its WKT is the lossless way across
    return crs.to_wkt() if hasattr(crs, "to_wkt") and not isinstance(crs, pyproj.CRS) else crs


def check_osm_file(path: str) -> None:
    if os.path.isdir(path):
        raise OSMReadError(path, "is a directory, not an OSM file")
    if not os.path.isfile(path):
        raise OSMReadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise OSMReadError(path, "empty file")
