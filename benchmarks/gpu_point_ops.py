"""Prepared GPU check: batched torch FPS (and kNN) on CUDA against open3d's CPU loop.

    python benchmarks/gpu_point_ops.py [--data DIR] [--small 1024] [--large 256] [--rounds 3]

Clouds: the real scans and LiDAR tiles of the project's own `data/pointcloud` (or `--data`,
../shared/data/pointcloud/pcl_scans when the machine has it), cut into random 1,024- and
8,192-point subsets. Cases 1024 -> 256 and 8192 -> 1024, batch sizes `--small` / `--large`. open3d
(`farthest_point_down_sample`, one cloud per call, CPU) and our numba CPU backend (every core)
are the baselines; ours on CUDA runs the whole batch in one call (the torch loop: one wide kernel
per elementwise pass). Expected: >= 10x open3d's per-cloud loop. Every case checks that CUDA
picks exactly the CPU indices. Timings: best of `--rounds`, CUDA synchronised, after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from facetvlp.domains.pointcloud.fps import numba_available
from facetvlp.domains.pointcloud.ops import farthest_point_sample, knn
from facetvlp.domains.pointcloud.readers import read_points

REPO = Path(__file__).resolve().parents[1]


def scan_subsets(data: Path, count: int, n: int) -> np.ndarray:
    suffixes = (".pcd", ".ply", ".las", ".laz")
    files = [p for p in sorted(data.rglob("*")) if p.suffix.lower() in suffixes]
    pools = []
    for path in files:
        try:
            pools.append(read_points(path).xyz)
        except Exception as exc:  # noqa: BLE001 - a reader missing on this machine: skip the file
            print(f"  skipped {path.name}: {type(exc).__name__}")
    pools = [p for p in pools if len(p) >= n]
    if not pools:
        raise SystemExit(f"no cloud of >= {n} points under {data}")
    rng = np.random.default_rng(0)
    return np.stack([pools[i % len(pools)][rng.choice(len(pools[i % len(pools)]), n, replace=False)]
                     for i in range(count)]).astype(np.float32)


def best_of(rounds: int, fn) -> tuple[float, object]:
    best, result = np.inf, None
    for _ in range(rounds):
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def case(clouds: np.ndarray, m: int, rounds: int) -> float | None:
    n_clouds = len(clouds)
    cpu = torch.from_numpy(clouds)
    gpu = cpu.cuda()
    farthest_point_sample(gpu[:2], m)  # warm-up: kernels and allocator
    t_gpu, picked_gpu = best_of(rounds, lambda: farthest_point_sample(gpu, m).cpu())
    rows = [("torch cuda, one call", t_gpu)]
    if numba_available():
        t_numba, picked_cpu = best_of(1, lambda: farthest_point_sample(cpu, m, backend="numba"))
        rows.append((f"numba cpu, {torch.get_num_threads()} threads", t_numba))
    else:
        picked_cpu = farthest_point_sample(cpu[:8], m, algorithm="loop")
    same = torch.equal(picked_gpu[: len(picked_cpu)], picked_cpu)
    t_o3d = None
    try:
        import open3d as o3d

        legacy = [o3d.geometry.PointCloud(o3d.utility.Vector3dVector(c.astype(np.float64)))
                  for c in clouds]
        t_o3d, _ = best_of(1, lambda: [pc.farthest_point_down_sample(m) for pc in legacy])
        rows.insert(0, ("open3d cpu, per-cloud loop", t_o3d))
    except ImportError:
        print("  (open3d not installed here: no open3d baseline)")
    print(f"\nFPS {clouds.shape[1]} -> {m}, {n_clouds} clouds; cuda picks == cpu picks: {same}")
    for name, seconds in rows:
        ratio = f"{t_o3d / seconds:8.1f}x open3d" if t_o3d else ""
        print(f"  {name:<28} {n_clouds / seconds:>12.1f} clouds/s {ratio}")
    _, idx = knn(gpu[:4, :64], gpu[:4], 32)
    _, idx_cpu = knn(cpu[:4, :64], cpu[:4], 32)
    rows_gpu, rows_cpu = idx.cpu().reshape(-1, 32).tolist(), idx_cpu.reshape(-1, 32).tolist()
    same_knn = all(set(a) == set(b) for a, b in zip(rows_gpu, rows_cpu))
    print(f"  kNN k=32 cuda == cpu neighbour sets: {same_knn}")
    return t_o3d / t_gpu if t_o3d else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared = REPO.parent / "shared/data/pointcloud/pcl_scans"
    parser.add_argument("--data", type=Path,
                        default=shared if shared.is_dir() else REPO / "data/pointcloud")
    parser.add_argument("--small", type=int, default=1024, help="clouds in the 1024 -> 256 case")
    parser.add_argument("--large", type=int, default=256, help="clouds in the 8192 -> 1024 case")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores, "
          f"clouds from {args.data}")
    ratios = [case(scan_subsets(args.data, args.small, 1024), 256, args.rounds),
              case(scan_subsets(args.data, args.large, 8192), 1024, args.rounds)]
    print("\nCUDA vs open3d's CPU loop: " + ", ".join(
        f"{r:.1f}x" if r else "n/a" for r in ratios) + " (expected >= 10x)")


if __name__ == "__main__":
    main()
