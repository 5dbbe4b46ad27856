"""Farthest point sampling: ours (pure torch, batched) against open3d and fpsample, same clouds.

    python benchmarks/point_ops.py [--data ../shared/data/pointcloud] [--rounds 3] [--cuda]
                                   [--large 16 64] [--threads 1]

Cases: 1024 -> 256 on real ModelNet10 shapes (1,024-point PCDs) and 8192 -> 1024 on 8,192-point
random subsets of the real scans and meshes (PCL scans, scanned meshes), at each batch size of
`--large`. open3d and fpsample process one cloud per call; ours takes the whole batch in one
call, with both torch algorithms (fps.py): "loop" (every point every step) and "blocked"
(Morton blocks, only blocks the new point can reach). Each timing is the best of `--rounds`
interleaved rounds (the machine is shared; the best round is the least disturbed). Every run
also checks that all of them pick the same point sets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import open3d as o3d
import torch

from facetvlp.domains.pointcloud.ops import farthest_point_sample
from facetvlp.domains.pointcloud.readers import read_points

REPO = Path(__file__).resolve().parents[1]


def modelnet_clouds(data: Path, count: int) -> np.ndarray:
    files = sorted((data / "modelnet10_train").glob("*/*.pcd"))
    step = max(1, len(files) // count)
    return np.stack([read_points(f).xyz for f in files[::step][:count]])


def large_clouds(data: Path, count: int, n: int = 8192) -> np.ndarray:
    sources = [p for p in sorted((data / "pcl_scans").glob("*.pcd"))]
    sources += sorted((data / "scanned_meshes").glob("*.ply"))
    sources += sorted((data / "scanned_meshes").glob("*.obj"))
    pools = [read_points(p, mesh_points=4 * n).xyz for p in sources]
    pools = [p for p in pools if len(p) >= n]
    rng = np.random.default_rng(0)
    return np.stack([pools[i % len(pools)][rng.choice(len(pools[i % len(pools)]), n, replace=False)]
                     for i in range(count)])


def time_open3d(clouds: np.ndarray, m: int) -> tuple[float, list[np.ndarray]]:
    legacy = [o3d.geometry.PointCloud(o3d.utility.Vector3dVector(c)) for c in clouds]
    start = time.perf_counter()
    picked = [np.asarray(pc.farthest_point_down_sample(m).points) for pc in legacy]
    return time.perf_counter() - start, picked


def time_fpsample(clouds32: np.ndarray, m: int) -> tuple[float, list[np.ndarray]]:
    import fpsample

    start = time.perf_counter()
    picked = [fpsample.fps_sampling(c, m, start_idx=0) for c in clouds32]
    return time.perf_counter() - start, picked


def time_ours(batch: torch.Tensor, m: int, algorithm: str = "auto") -> tuple[float, torch.Tensor]:
    if batch.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    index = farthest_point_sample(batch, m, algorithm=algorithm)
    if batch.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, index


def run_case(name: str, clouds: np.ndarray, m: int, rounds: int, cuda: bool) -> None:
    clouds32 = clouds.astype(np.float32)
    batch = torch.from_numpy(clouds32)
    n_clouds = len(clouds)
    best = {"open3d": np.inf, "fpsample": np.inf, "ours_loop": np.inf, "ours_blocked": np.inf,
            "ours_cuda": np.inf}
    try:
        import fpsample  # noqa: F401

        have_fpsample = True
    except ImportError:
        have_fpsample = False
        best.pop("fpsample")
    if not cuda:
        best.pop("ours_cuda")
    for _ in range(rounds):
        t, o3d_picked = time_open3d(clouds, m)
        best["open3d"] = min(best["open3d"], t)
        if have_fpsample:
            t, fps_picked = time_fpsample(clouds32, m)
            best["fpsample"] = min(best["fpsample"], t)
        t, ours = time_ours(batch, m, "loop")
        best["ours_loop"] = min(best["ours_loop"], t)
        t, blocked = time_ours(batch, m, "blocked")
        best["ours_blocked"] = min(best["ours_blocked"], t)
        if cuda:
            time_ours(batch[:2].cuda(), m)  # warm-up: kernels and allocator
            t, ours_gpu = time_ours(batch.cuda(), m)
            best["ours_cuda"] = min(best["ours_cuda"], t)
    ours_np = ours.numpy()
    same_o3d = sum(np.array_equal(clouds[i][np.sort(ours_np[i])], o3d_picked[i])
                   for i in range(n_clouds))
    line = f"same sets as open3d: {same_o3d}/{n_clouds}, blocked == loop: {torch.equal(blocked, ours)}"
    if have_fpsample:
        same_fps = sum(np.array_equal(ours_np[i], fps_picked[i]) for i in range(n_clouds))
        line += f", same indices as fpsample: {same_fps}/{n_clouds}"
    if cuda:
        line += f", cuda == cpu: {bool(torch.equal(ours_gpu.cpu(), ours))}"
    print(f"\n{name}: {n_clouds} clouds of {clouds.shape[1]} points -> {m}")
    print(f"  {'method':<13} {'clouds/s':>10}   vs open3d")
    for method, seconds in best.items():
        print(f"  {method:<13} {n_clouds / seconds:>10.1f}   {best['open3d'] / seconds:.2f}x")
    print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/pointcloud")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small", type=int, default=256, help="clouds in the 1024->256 case")
    parser.add_argument("--large", type=int, nargs="+", default=[16, 64],
                        help="clouds in the 8192->1024 case (one case per value)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cuda", action="store_true", help="also time ours on the GPU")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); "
          f"open3d {o3d.__version__} (single-threaded FPS)")
    run_case("FPS 1024->256", modelnet_clouds(args.data, args.small), 256, args.rounds, args.cuda)
    for count in args.large:
        run_case("FPS 8192->1024", large_clouds(args.data, count), 1024, args.rounds, args.cuda)


if __name__ == "__main__":
    main()
