"""Point ops against open3d on the same real clouds: farthest point sampling, kNN, ball query.

    python benchmarks/point_ops.py [--data ../shared/data/pointcloud] [--rounds 5]
                                   [--small 256] [--large 64] [--threads N] [--cuda]

FPS cases: 1024 -> 256 on real ModelNet10 shapes (1,024-point PCDs) and 8192 -> 1024 on 8,192-point
random subsets of the real scans and meshes (PCL scans, scanned meshes). open3d
(`farthest_point_down_sample`, C++, one cloud per call, single-threaded) runs its per-cloud loop;
ours runs the batch in one call:

* `numba 1 thread`: the default CPU backend (fps_numba.py) with torch (and so numba) on one thread;
* `numba N threads`: the same call with `--threads` (default: every core), clouds in parallel;
* `torch loop` / `torch blocked`: the pure-torch algorithms (the fallback without numba, and the
  CUDA path), one thread;
* `fpsample` (if installed): the Rust package, one cloud per call.

The two ratios the issue asks for are printed last: numba on one thread / open3d, and numba on
all threads / open3d's per-cloud loop. Every run checks that every method picks the same point
sets (open3d returns them in file order; ours in pick order).

kNN (k = 32 around 64 FPS centres, Point-BERT's grouping) and ball query (r = 0.2, k = 24 around
256 centres, PointNet++'s first level) on the ModelNet shapes: ours (torch, batched) against
open3d's KD-tree, both its tensor `NearestNeighborSearch` (all queries of a cloud in one call) and
the legacy `KDTreeFlann` (one query per call), tree construction included. kNN checks that the
neighbour sets agree; open3d's hybrid search returns the k nearest points inside the ball while
ours (PointNet++) returns the first k by index, so for balls it checks that ours lie inside.

Each timing is the best of `--rounds` interleaved rounds (the machine is shared; the best round is
the least disturbed one). The first call of the numba kernels (JIT compile, or loading the
on-disk cache) is timed separately and kept out of the rounds.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import open3d as o3d
import torch

from facetvlp.domains.pointcloud.fps import numba_available
from facetvlp.domains.pointcloud.ops import ball_query, farthest_point_sample, gather_points, knn
from facetvlp.domains.pointcloud.readers import read_points

REPO = Path(__file__).resolve().parents[1]


def modelnet_clouds(data: Path, count: int) -> np.ndarray:
    files = sorted((data / "modelnet10_train").glob("*/*.pcd"))
    step = max(1, len(files) // count)
    return np.stack([read_points(f).xyz for f in files[::step][:count]]).astype(np.float32)


def large_clouds(data: Path, count: int, n: int = 8192) -> np.ndarray:
    sources = sorted((data / "pcl_scans").glob("*.pcd"))
    sources += sorted((data / "scanned_meshes").glob("*.ply"))
    sources += sorted((data / "scanned_meshes").glob("*.obj"))
    pools = [read_points(p, mesh_points=4 * n).xyz for p in sources]
    pools = [p for p in pools if len(p) >= n]
    rng = np.random.default_rng(0)
    return np.stack([pools[i % len(pools)][rng.choice(len(pools[i % len(pools)]), n, replace=False)]
                     for i in range(count)]).astype(np.float32)


class threads:
    """torch (and so the numba backend) on n threads inside the block."""

    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def sync(x):
    if torch.is_tensor(x) and x.is_cuda:
        torch.cuda.synchronize()
    return x


# -- farthest point sampling -------------------------------------------------------------------
def fps_case(name: str, clouds: np.ndarray, m: int, rounds: int, n_threads: int, cuda: bool):
    batch = torch.from_numpy(clouds)
    legacy = [o3d.geometry.PointCloud(o3d.utility.Vector3dVector(c.astype(np.float64)))
              for c in clouds]
    methods = {"open3d": lambda: [np.asarray(pc.farthest_point_down_sample(m).points)
                                  for pc in legacy]}
    if numba_available():
        methods["numba 1 thread"] = lambda: _with_threads(1, lambda: farthest_point_sample(
            batch, m, backend="numba"))
        methods[f"numba {n_threads} threads"] = lambda: _with_threads(
            n_threads, lambda: farthest_point_sample(batch, m, backend="numba"))
    methods["torch loop"] = lambda: _with_threads(1, lambda: farthest_point_sample(
        batch, m, backend="torch", algorithm="loop"))
    methods["torch blocked"] = lambda: _with_threads(1, lambda: farthest_point_sample(
        batch, m, backend="torch", algorithm="blocked"))
    try:
        import fpsample

        methods["fpsample"] = lambda: [fpsample.fps_sampling(c, m, start_idx=0) for c in clouds]
    except ImportError:
        pass
    if cuda:
        gpu = batch.cuda()
        sync(farthest_point_sample(gpu[:2], m))  # warm-up: kernels and allocator
        methods["torch cuda"] = lambda: sync(farthest_point_sample(gpu, m)).cpu()
    best, results = _interleaved(methods, rounds)

    reference = results["torch loop"].numpy()
    agree = {}
    for method, picked in results.items():
        if method == "open3d":
            agree[method] = sum(np.array_equal(clouds[i][np.sort(reference[i])].astype(np.float64),
                                               picked[i]) for i in range(len(clouds)))
        elif method == "fpsample":
            agree[method] = sum(np.array_equal(reference[i], picked[i]) for i in range(len(clouds)))
        else:
            agree[method] = sum(np.array_equal(reference[i], row)
                                for i, row in enumerate(np.asarray(picked)))
    _print_table(f"FPS {name}: {len(clouds)} clouds of {clouds.shape[1]} points -> {m}",
                 len(clouds), "clouds/s", best, agree, "same picks as the torch loop")
    return best


def _with_threads(n: int, fn):
    with threads(n):
        return fn()


def _interleaved(methods: dict, rounds: int) -> tuple[dict, dict]:
    best = dict.fromkeys(methods, np.inf)
    results = {}
    for _ in range(rounds):
        for method, fn in methods.items():
            seconds, results[method] = timed(fn)
            best[method] = min(best[method], seconds)
    return best, results


def _print_table(title: str, count: int, unit: str, best: dict, agree: dict, agree_label: str):
    print(f"\n{title}")
    print(f"  {'method':<22} {unit:>12}   vs open3d   {agree_label}")
    base = best["open3d"] if "open3d" in best else best["open3d tensor"]
    for method, seconds in best.items():
        mark = f"{agree[method]}/{count}" if method in agree else ""
        print(f"  {method:<22} {count / seconds:>12.1f}   {base / seconds:>7.2f}x   {mark}")


# -- kNN and ball query ------------------------------------------------------------------------
def neighbour_cases(clouds: np.ndarray, rounds: int, n_threads: int) -> None:
    batch = torch.from_numpy(clouds)
    with threads(n_threads):
        centres64 = gather_points(batch, farthest_point_sample(batch, 64)).contiguous()
        centres256 = gather_points(batch, farthest_point_sample(batch, 256)).contiguous()
    k_knn, radius, k_ball = 32, 0.2, 24

    def o3d_tensor_knn():
        out = []
        for cloud, query in zip(clouds, centres64.numpy()):
            nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(cloud))
            nns.knn_index()
            out.append(nns.knn_search(o3d.core.Tensor(query), k_knn)[0].numpy())
        return out

    def o3d_legacy_knn():
        out = []
        for cloud, query in zip(clouds, centres64.numpy().astype(np.float64)):
            tree = o3d.geometry.KDTreeFlann(
                o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64))))
            found = [np.asarray(tree.search_knn_vector_3d(q, k_knn)[1]) for q in query]
            out.append(np.array(found))
        return out

    def o3d_tensor_ball():
        out = []
        for cloud, query in zip(clouds, centres256.numpy()):
            nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(cloud))
            nns.hybrid_index(radius)
            out.append(nns.hybrid_search(o3d.core.Tensor(query), radius, k_ball)[0].numpy())
        return out

    def o3d_legacy_ball():
        out = []
        for cloud, query in zip(clouds, centres256.numpy().astype(np.float64)):
            tree = o3d.geometry.KDTreeFlann(
                o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64))))
            out.append([np.asarray(tree.search_hybrid_vector_3d(q, radius, k_ball)[1])
                        for q in query])
        return out

    knn_methods = {
        "open3d tensor": o3d_tensor_knn,
        "open3d KDTreeFlann": o3d_legacy_knn,
        "ours 1 thread": lambda: _with_threads(1, lambda: knn(centres64, batch, k_knn)[1]),
        f"ours {n_threads} threads": lambda: _with_threads(
            n_threads, lambda: knn(centres64, batch, k_knn)[1]),
    }
    best, results = _interleaved(knn_methods, rounds)
    ours = results["ours 1 thread"].numpy()
    agree = {m: sum(_same_rows(ours[i], np.asarray(r[i])) for i in range(len(clouds)))
             for m, r in results.items()}
    _print_table(f"kNN k={k_knn} around 64 FPS centres, {len(clouds)} clouds of {clouds.shape[1]}",
                 len(clouds), "clouds/s", best, agree, "same neighbour sets as ours")

    ball_methods = {
        "open3d tensor": o3d_tensor_ball,
        "open3d KDTreeFlann": o3d_legacy_ball,
        "ours 1 thread": lambda: _with_threads(
            1, lambda: ball_query(centres256, batch, radius, k_ball)),
        f"ours {n_threads} threads": lambda: _with_threads(
            n_threads, lambda: ball_query(centres256, batch, radius, k_ball)),
    }
    best, results = _interleaved(ball_methods, rounds)
    inside = _inside_ball(batch, centres256, results["ours 1 thread"], radius)
    _print_table(f"ball query r={radius} k={k_ball} around 256 FPS centres, {len(clouds)} clouds",
                 len(clouds), "clouds/s", best, {"ours 1 thread": inside},
                 "clouds whose picks all lie in the ball")


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Same neighbour set per query (order within a tie may differ)."""
    return a.shape == b.shape and all(set(x) == set(y) for x, y in zip(a.tolist(), b.tolist()))


def _inside_ball(batch, centres, index, radius) -> int:
    picked = gather_points(batch, index)
    dist = (picked - centres[:, :, None]).norm(dim=-1)
    # a ball with no point falls back to the nearest point: only non-empty balls are checked
    return int(((dist <= radius * (1 + 1e-6)) | (index == index[..., :1])).all(-1).all(-1).sum())


def first_call_cost(clouds: np.ndarray) -> None:
    """Seconds of the first numba call in this process: JIT compile, or loading the cache."""
    if not numba_available():
        return
    seconds, _ = timed(lambda: _with_threads(2, lambda: farthest_point_sample(
        torch.from_numpy(clouds[:2]), 16, backend="numba")))
    print(f"numba first call (serial + parallel kernels: compile or cache load): {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/pointcloud")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=256, help="clouds in the 1024->256 case")
    parser.add_argument("--large", type=int, default=64, help="clouds in the 8192->1024 case")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads of the batched run (default: every core)")
    parser.add_argument("--cuda", action="store_true", help="also time torch FPS on the GPU")
    parser.add_argument("--no-neighbours", action="store_true", help="skip kNN and ball query")
    args = parser.parse_args()
    numba_version = "absent"
    if numba_available():
        import numba

        numba_version = numba.__version__
    print(f"torch {torch.__version__}, numba {numba_version}, open3d {o3d.__version__}; "
          f"{os.cpu_count()} CPU cores, batched runs on {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.2f}")
    small = modelnet_clouds(args.data, args.small)
    first_call_cost(small)
    ratios = []
    for name, clouds, m in (("1024->256", small, 256),
                            ("8192->1024", large_clouds(args.data, args.large), 1024)):
        best = fps_case(name, clouds, m, args.rounds, args.threads, args.cuda)
        if numba_available():
            ratios.append((name, best["open3d"] / best["numba 1 thread"],
                           best["open3d"] / best[f"numba {args.threads} threads"]))
    if not args.no_neighbours:
        neighbour_cases(small[:64], args.rounds, args.threads)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    for name, one, many in ratios:
        print(f"FPS {name}: ours/open3d one thread {one:.2f}x, "
              f"batched on {args.threads} threads vs open3d's per-cloud loop {many:.2f}x")


if __name__ == "__main__":
    main()
