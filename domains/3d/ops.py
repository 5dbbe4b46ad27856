"""Point operations: farthest point sampling, kNN, ball query, grouping.

Point-BERT / PointNet++ code bases ship these as CUDA extensions that must be compiled against the
exact torch and CUDA versions, the most common installation failure of those projects. kNN, ball
query and grouping here are plain torch: they run wherever torch runs (CPU or CUDA, any version)
and keep memory bounded on large clouds by computing distances in chunks of query points.

Farthest point sampling lives in fps.py (re-exported here): numba kernels on CPU (prebuilt
wheels, nothing to compile at install), plain torch on CUDA and without numba.
"""

from __future__ import annotations

import torch

from .fps import farthest_point_sample

__all__ = ["farthest_point_sample", "pairwise_sq_dist", "knn", "ball_query", "gather_points", "group"]

# distances computed at once are capped at this many float32 values (~256 MiB)
DEFAULT_CHUNK_ELEMENTS = 64 * 1024 * 1024


def _batched(xyz: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if xyz.ndim == 2:
        return xyz.unsqueeze(0), True
    if xyz.ndim != 3 or xyz.shape[-1] < 3:
        raise ValueError(f"expected (N, 3) or (B, N, 3) coordinates, got {tuple(xyz.shape)}")
    return xyz, False


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
