"""Random GeoTIFF tiles per second: torchgeo (RasterDataset + RandomGeoSampler) vs ours
(GeoTiffTileDataset + RandomTileSampler), same scenes, same tile size, one process.

Then the memory growth of reading tiles from a small, a medium and a large scene (up to a 20k x 20k
uint16 tiled GeoTIFF this script writes), each in a fresh child process so one run's peak cannot
hide another's. Resident memory can rise only by what GDAL's block cache holds (capped here with
GDAL_CACHEMAX) plus one tile, whatever the scene size.

    python benchmarks/geotiff_tiles.py                     # full run (writes ~300 MB once)
    python benchmarks/geotiff_tiles.py --tiles 200 --large 8000

Scenes: the real Landsat 7 scene RGB.byte.tif from ../shared/data (CC0, rasterio test data)
and uint16 scenes written here from its band 1 (x100), tiled 512 and ZSTD-compressed:
2,000, 8,000 and --large px square, same CRS (EPSG:32618), so neither reader reprojects.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACETVLP_SHARED_DATA", REPO.parent / "shared" / "data"))
LANDSAT = SHARED / "remote_sensing" / "landsat_geotiffs" / "RGB.byte.tif"
# A bounded GDAL block cache for the memory runs: random tiles rarely reuse blocks, and the
# default (5% of RAM) would let the cache, not the reader, grow with the scene.
MEMORY_RUN_CACHE_MB = "64"


def write_scene(path: Path, size: int) -> Path:
    """A size x size uint16 GeoTIFF tiled from real Landsat pixels (written once, reused)."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.exists():
        with rasterio.open(path) as ds:
            if ds.width == size and ds.height == size:
                return path
    with rasterio.open(LANDSAT) as ds:
        band = ds.read(1).astype(np.uint16) * 100
        left, top = ds.bounds.left, ds.bounds.top
    block = 1024
    pattern = np.tile(band, (block // band.shape[0] + 2, block // band.shape[1] + 2))
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", nodata=0,
                   crs="EPSG:32618", transform=from_origin(left, top, 30, 30), tiled=True,
                   blockxsize=512, blockysize=512, compress="zstd", zstd_level=1, predictor=2,
                   bigtiff="yes", num_threads=2)
    tmp = path.with_suffix(".partial.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        for row in range(0, size, block):
            for col in range(0, size, block):
                h, w = min(block, size - row), min(block, size - col)
                r, c = row % band.shape[0], col % band.shape[1]
                dst.write(pattern[r:r + h, c:c + w][None], window=Window(col, row, w, h))
    os.replace(tmp, path)
    return path


def torchgeo_tiles(scene: Path, size: int, count: int, seed: int = 0):
    """Iterator of float32 tiles from torchgeo, as its docs set it up."""
    import torch
    from torchgeo.datasets import RasterDataset
    from torchgeo.samplers import RandomGeoSampler

    dataset = RasterDataset(paths=[str(scene)])
    sampler = RandomGeoSampler(dataset, size=size, length=count,
                               generator=torch.Generator().manual_seed(seed))
    for query in sampler:
        yield dataset[query]["image"]


def our_tiles(scene: Path, size: int, count: int, seed: int = 0):
    from facetvlp.domains.remote_sensing.scene_dataset import GeoTiffTileDataset

    dataset = GeoTiffTileDataset([str(scene)], dict(type="RandomTileSampler", size=size,
                                                    length=count, seed=seed))
    for index in range(len(dataset)):
        yield dataset[index]["image"]


READERS = {"torchgeo": torchgeo_tiles, "ours": our_tiles}


def tiles_per_second(reader: str, scene: Path, size: int, count: int) -> float:
    # Warm-up: open handles, build indexes, touch the file's header (both readers cache these).
    for tile in READERS[reader](scene, size, 8, seed=99):
        assert tile.shape[-2:] == (size, size)
    start = time.perf_counter()
    n = sum(1 for _ in READERS[reader](scene, size, count))
    return n / (time.perf_counter() - start)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:  # resident pages, second field
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def child_memory(reader: str, scene: str, size: int, count: int) -> None:
    """Run in a fresh process: after imports and a warm-up, read `count` tiles and print how far
    resident memory and traced Python allocations rise above where they started."""
    for _ in READERS[reader](Path(scene), size, 4, seed=99):
        pass
    baseline = current_rss_mb()
    peak = baseline
    tracemalloc.start()
    for _ in READERS[reader](Path(scene), size, count):
        peak = max(peak, current_rss_mb())
    _, traced_peak = tracemalloc.get_traced_memory()
    print(json.dumps({"baseline_rss_mb": baseline, "rss_rise_mb": peak - baseline,
                      "peak_traced_mb": traced_peak / 2**20}))


def measure_memory(reader: str, scene: Path, size: int, count: int) -> dict:
    env = dict(os.environ, GDAL_CACHEMAX=MEMORY_RUN_CACHE_MB)
    out = subprocess.run([sys.executable, __file__, "--child", reader, "--scene", str(scene),
                          "--size", str(size), "--tiles", str(count)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=200, help="tiles per reader and scene")
    parser.add_argument("--size", type=int, default=256, help="tile size in pixels")
    parser.add_argument("--large", type=int, default=20000, help="side of the large scene")
    parser.add_argument("--workdir", default="/tmp/facetvlp_bench_geotiff",
                        help="where the written scenes are kept between runs")
    parser.add_argument("--child", choices=sorted(READERS), help=argparse.SUPPRESS)
    parser.add_argument("--scene", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_memory(args.child, args.scene, args.size, args.tiles)
        return
    if not LANDSAT.exists():
        sys.exit(f"needs the real Landsat scene at {LANDSAT} (set FACETVLP_SHARED_DATA)")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    small = write_scene(work / "small_2000_uint16.tif", 2000)
    medium = write_scene(work / "medium_8000_uint16.tif", 8000)
    large = write_scene(work / f"large_{args.large}_uint16.tif", args.large)
    print(f"scenes ready in {time.perf_counter() - start:.1f} s: " + ", ".join(
        f"{p.name} ({p.stat().st_size / 2**20:.0f} MiB on disk)" for p in (small, medium, large)))

    print(f"\nrandom {args.size}x{args.size} tiles per second, {args.tiles} tiles, one process")
    print(f"{'scene':<34}{'torchgeo':>10}{'ours':>10}{'ours/torchgeo':>15}")
    for scene in (LANDSAT, small, large):
        theirs = tiles_per_second("torchgeo", scene, args.size, args.tiles)
        ours = tiles_per_second("ours", scene, args.size, args.tiles)
        print(f"{scene.name:<34}{theirs:>10.1f}{ours:>10.1f}{ours / theirs:>14.2f}x")

    print(f"\npeak memory reading {args.tiles} tiles in a fresh process "
          f"(GDAL_CACHEMAX={MEMORY_RUN_CACHE_MB} MB)")
    print(f"{'reader':<10}{'scene':<28}{'RSS after warm-up':>18}{'RSS rise':>10}"
          f"{'peak traced':>13}   (MiB)")
    for reader in ("ours", "torchgeo"):
        for scene in (small, medium, large):
            mem = measure_memory(reader, scene, args.size, args.tiles)
            print(f"{reader:<10}{scene.name:<28}{mem['baseline_rss_mb']:>18.1f}"
                  f"{mem['rss_rise_mb']:>10.1f}{mem['peak_traced_mb']:>13.1f}")


if __name__ == "__main__":
    main()
