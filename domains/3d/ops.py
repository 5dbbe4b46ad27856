"""Point operations in plain torch: farthest point sampling, kNN, ball query, grouping.

Point-BERT / PointNet++ code bases ship these as CUDA extensions that must be compiled against the
exact torch and CUDA versions, the most common installation failure of those projects. These run
wherever torch runs (CPU or CUDA, any version) and keep memory bounded on large clouds by
computing distances in chunks of query points.

Semantics of `farthest_point_sample` (shared by every backend, and checked against a brute-force
reference in tests): start at `start_index` (default 0, as in open3d's
`farthest_point_down_sample`), keep for every point its smallest squared Euclidean distance to the
chosen set (float32), and pick the point with the largest such distance next; ties go to the
lowest index. open3d's `farthest_point_down_sample` (float64) selects the same point set on every
real cloud measured (it returns them in file order). The "fpsample" backend (the `fpsample`
package, CPU, float32) follows the same rule but accumulates the distance differently, so on a
few clouds a near-tie resolves the other way and the sequences part from there (2 of 256
ModelNet10 clouds and 3 of 16 8,192-point scans in benchmarks/point_ops.py).
"""

from __future__ import annotations

import importlib.util

import torch

# distances computed at once are capped at this many float32 values (~256 MiB)
DEFAULT_CHUNK_ELEMENTS = 64 * 1024 * 1024
# points per CPU farthest-point-sampling pass (clouds x points), see farthest_point_sample
CPU_FPS_CHUNK_POINTS = 32 * 1024


def _batched(xyz: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if xyz.ndim == 2:
        return xyz.unsqueeze(0), True
    if xyz.ndim != 3 or xyz.shape[-1] < 3:
        raise ValueError(f"expected (N, 3) or (B, N, 3) coordinates, got {tuple(xyz.shape)}")
    return xyz, False


def farthest_point_sample(
    xyz: torch.Tensor, n_samples: int, start_index: int = 0, backend: str = "torch"
) -> torch.Tensor:
    """Indices (B, n_samples) of farthest point samples of clouds (B, N, 3) (or (N, 3) -> (n,)).

    backend: "torch" (any device), "fpsample" (CPU tensors, needs the fpsample package), or
    "auto" (fpsample for CPU tensors when installed, torch otherwise).
    """
    xyz, single = _batched(xyz)
    n_points = xyz.shape[1]
    if not 0 < n_samples <= n_points:
        raise ValueError(f"n_samples must be in 1..{n_points}, got {n_samples}")
    if not 0 <= start_index < n_points:
        raise ValueError(f"start_index must be in 0..{n_points - 1}, got {start_index}")
    if backend == "auto":
        use_fpsample = xyz.device.type == "cpu" and importlib.util.find_spec("fpsample")
        backend = "fpsample" if use_fpsample else "torch"
    if backend == "torch":
        # on CPU, batches are cut to 32k points: each coordinate plane (128 KiB) stays in cache
        # while the loop streams over it 8 times per step, and every elementwise op stays under
        # torch's parallel grain size, so it runs serially: on a shared CPU, OpenMP barriers
        # in 256 x 8 tiny ops per cloud cost up to 10x the work (measured, 2 threads)
        step = len(xyz) if xyz.is_cuda else max(1, CPU_FPS_CHUNK_POINTS // n_points)
        index = torch.cat([_fps_torch(xyz[i : i + step, :, :3], n_samples, start_index)
                           for i in range(0, len(xyz), step)])
    elif backend == "fpsample":
        index = _fps_fpsample(xyz[..., :3], n_samples, start_index)
    else:
        raise ValueError(f"backend must be 'torch', 'fpsample' or 'auto', got {backend!r}")
    return index[0] if single else index


@torch.no_grad()
def _fps_torch(xyz: torch.Tensor, n_samples: int, start_index: int) -> torch.Tensor:
    batch, n_points, _ = xyz.shape
    # one contiguous (B, N) plane per coordinate and preallocated buffers: the loop is
    # sequential by nature, so the cost is the number and size of elementwise passes per step
    planes = xyz.detach().float().permute(2, 0, 1).contiguous()
    index = torch.empty(batch, n_samples, dtype=torch.long, device=xyz.device)
    nearest = torch.full((batch, n_points), float("inf"), device=xyz.device)
    dist = torch.empty_like(nearest)
    diff = torch.empty_like(nearest)
    farthest = torch.full((batch, 1), start_index, dtype=torch.long, device=xyz.device)
    for step in range(n_samples):
        index[:, step : step + 1] = farthest
        centre = torch.gather(planes, 2, farthest.unsqueeze(0).expand(3, batch, 1))
        torch.sub(planes[0], centre[0], out=dist)
        dist.square_()
        torch.sub(planes[1], centre[1], out=diff)
        dist.addcmul_(diff, diff)
        torch.sub(planes[2], centre[2], out=diff)
        dist.addcmul_(diff, diff)
        torch.minimum(nearest, dist, out=nearest)
        farthest = nearest.argmax(dim=1, keepdim=True)  # first maximum: ties to lowest index
    return index


def _fps_fpsample(xyz: torch.Tensor, n_samples: int, start_index: int) -> torch.Tensor:
    import fpsample

    if xyz.device.type != "cpu":
        raise ValueError("the fpsample backend runs on CPU tensors only")
    clouds = xyz.detach().float().numpy()
    rows = [fpsample.fps_sampling(c, n_samples, start_idx=start_index) for c in clouds]
    return torch.stack([torch.from_numpy(r.astype("int64")) for r in rows])


def _query_chunk(batch: int, n_ref: int, chunk_elements: int) -> int:
    return max(1, chunk_elements // max(1, batch * n_ref))


def pairwise_sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, M, N) squared distances, computed from coordinate differences (not the |a|^2 - 2ab +
    |b|^2 expansion, whose cancellation error reorders close neighbours of far-off clouds)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").square_()


def knn(
    query: torch.Tensor, ref: torch.Tensor, k: int, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest `ref` points of each `query` point: (sq_dist, index), each (B, M, k),
    nearest first. Inputs (B, M, 3) and (B, N, 3)."""
    query, single = _batched(query)
    ref, _ = _batched(ref)
    if not 0 < k <= ref.shape[1]:
        raise ValueError(f"k must be in 1..{ref.shape[1]}, got {k}")
    step = _query_chunk(query.shape[0], ref.shape[1], chunk_elements)
    dists, indices = [], []
    for start in range(0, query.shape[1], step):
        d2 = pairwise_sq_dist(query[:, start : start + step, :3], ref[..., :3])
        d, i = torch.topk(d2, k, dim=-1, largest=False, sorted=True)
        dists.append(d)
        indices.append(i)
    dist, index = torch.cat(dists, 1), torch.cat(indices, 1)
    return (dist[0], index[0]) if single else (dist, index)


def ball_query(
    query: torch.Tensor,
    ref: torch.Tensor,
    radius: float,
    k: int,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> torch.Tensor:
    """For each query point, the first k `ref` indices (in index order) within `radius`
    (B, M, k). As in PointNet++, a ball with fewer than k points repeats its first point; an
    empty ball (a query far from every ref point) falls back to the nearest point."""
    query, single = _batched(query)
    ref, _ = _batched(ref)
    n_ref = ref.shape[1]
    k_eff = min(k, n_ref)
    order = torch.arange(n_ref, device=ref.device)
    step = _query_chunk(query.shape[0], n_ref, chunk_elements)
    parts = []
    for start in range(0, query.shape[1], step):
        d2 = pairwise_sq_dist(query[:, start : start + step, :3], ref[..., :3])
        # out-of-ball points get index n_ref, so the k smallest "indices" are the first k inside
        candidates = torch.where(d2 <= radius * radius, order, n_ref)
        first, _ = torch.topk(candidates, k_eff, dim=-1, largest=False, sorted=True)
        nearest = d2.argmin(dim=-1, keepdim=True)
        head = torch.where(first[..., :1] < n_ref, first[..., :1], nearest)
        first = torch.where(first < n_ref, first, head)
        if k_eff < k:
            first = torch.cat([first, head.expand(*head.shape[:2], k - k_eff)], dim=-1)
        parts.append(first)
    index = torch.cat(parts, 1)
    return index[0] if single else index


def gather_points(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """points (B, N, C) picked by index (B, ...) -> (B, ..., C)."""
    batch, _, channels = points.shape
    flat = index.reshape(batch, -1)
    picked = torch.gather(points, 1, flat.unsqueeze(-1).expand(-1, -1, channels))
    return picked.reshape(*index.shape, channels)


def group(
    points: torch.Tensor, centres: torch.Tensor, index: torch.Tensor, relative: bool = True
) -> torch.Tensor:
    """Neighbourhoods (B, M, k, C) of `points` (B, N, C) around `centres` (B, M, 3); with
    `relative`, xyz is expressed relative to each centre (the other channels are unchanged)."""
    grouped = gather_points(points, index)
    if relative:
        grouped = torch.cat([grouped[..., :3] - centres[..., None, :3], grouped[..., 3:]], -1)
    return grouped
