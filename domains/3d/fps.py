"""Farthest point sampling, exact and batched: numba kernels on CPU, plain torch anywhere.

Semantics (shared by every backend and checked against a textbook reference in tests): start at
`start_index` (default 0, as open3d's `farthest_point_down_sample`), keep for every point its
smallest squared Euclidean distance to the chosen set, computed in float32 as
``(dx*dx + dy*dy) + dz*dz``, and pick the point with the largest such distance next; ties go to
the lowest index. open3d (float64) selects the same point sets on every real cloud measured (it
returns them in file order). The "fpsample" backend (the `fpsample` package, float32) follows the
same rule but accumulates the distance differently, so on a few clouds a near-tie resolves the
other way and the sequences part from there.

Backends: "numba" (fps_numba.py, CPU, the loop compiled; clouds of a batch run in parallel on
`torch.get_num_threads()` threads) and "torch" (any device, the two algorithms below). "auto",
the default, takes numba for CPU tensors when it is installed and torch otherwise (CUDA tensors,
or no numba). Every backend but fpsample picks exactly the same indices.

Two torch algorithms give identical indices:

* ``loop``: the textbook loop, every step updates every point. Each step is a handful of
  elementwise passes over the batch, which on a GPU is one wide kernel each.
* ``blocked`` (the torch backend's CPU default for clouds of 4,096+ points): points are sorted
  along a Morton curve and cut into blocks of ``block_size`` with a bounding sphere each. After
  a few dozen picks a new centre can only lower the distances of points close to it, so a step updates only the blocks whose sphere
  lies within reach: a block is skipped when ``|centre - c| >= radius + sqrt(block max)``, since
  then no point of it can get closer to the new point than it already is to the chosen set. The
  test keeps a relative margin of 1e-4 over float32 rounding, so a skipped block is one whose
  distances the loop would not have changed either: the per-point state, and so every pick, is
  bit-identical to the loop's. On 8,192-point scans a step reaches ~6% of the points on
  average; on 1,024-point shapes 20-50% of the blocks, where the loop is faster.
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import torch

# relative margin of the block test: far above float32 rounding (~1e-6 relative)
REACH_MARGIN = 1e-4
DEFAULT_BLOCK_SIZE = 64
# the loop's CPU batch chunk: each coordinate plane (128 KiB) stays in cache across its passes
LOOP_CPU_CHUNK_POINTS = 32 * 1024
ALGORITHMS = ("auto", "blocked", "loop")
# below this many points per cloud a step reaches too many blocks and the loop is faster
# (32 real clouds, one thread: 2,048 -> 512 loop 211 vs blocked 150 clouds/s; 4,096 -> 1,024
# loop 54 vs blocked 69)
BLOCKED_MIN_POINTS = 4096


def farthest_point_sample(
    xyz: torch.Tensor,
    n_samples: int,
    start_index: int = 0,
    backend: str = "auto",
    algorithm: str = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> torch.Tensor:
    """Indices (B, n_samples) of farthest point samples of clouds (B, N, 3) (or (N, 3) -> (n,)).

    backend: "numba" (CPU tensors, needs numba), "torch" (any device), "fpsample" (CPU tensors,
    needs the fpsample package; same rule, float32 accumulated differently), or "auto" (numba
    for CPU tensors when installed and no torch `algorithm` is named, torch otherwise).
    algorithm (torch backend): "blocked", "loop", or "auto" (blocked on CPU for clouds of
    BLOCKED_MIN_POINTS or more, loop otherwise and on CUDA); both give the same indices.
    """
    if xyz.ndim == 2:
        return farthest_point_sample(xyz[None], n_samples, start_index, backend, algorithm,
                                     block_size)[0]
    if xyz.ndim != 3 or xyz.shape[-1] < 3:
        raise ValueError(f"expected (N, 3) or (B, N, 3) coordinates, got {tuple(xyz.shape)}")
    n_points = xyz.shape[1]
    if not 0 < n_samples <= n_points:
        raise ValueError(f"n_samples must be in 1..{n_points}, got {n_samples}")
    if not 0 <= start_index < n_points:
        raise ValueError(f"start_index must be in 0..{n_points - 1}, got {start_index}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if backend == "auto":
        use_numba = xyz.device.type == "cpu" and algorithm == "auto" and numba_available()
        backend = "numba" if use_numba else "torch"
    xyz = xyz[..., :3].detach().float()
    if backend == "numba":
        if not numba_available():
            raise ValueError("backend='numba' needs the numba package (pip install numba)")
        return _fps_numba(xyz, n_samples, start_index)
    if backend == "fpsample":
        return _fps_fpsample(xyz, n_samples, start_index)
    if backend != "torch":
        raise ValueError(f"backend must be 'numba', 'torch', 'fpsample' or 'auto', got {backend!r}")
    if algorithm == "auto":
        algorithm = "blocked" if not xyz.is_cuda and BLOCKED_MIN_POINTS <= n_points < 2**24 else "loop"
    if algorithm == "blocked" and n_points >= 2**24:
        raise ValueError(f"the blocked algorithm indexes points in float32: at most 2**24 - 1 "
                         f"points per cloud, got {n_points} (use algorithm='loop')")
    if algorithm == "blocked":
        return _fps_blocked(xyz, n_samples, start_index, block_size)
    # on CPU the loop runs in cache-sized chunks that stay under torch's parallel grain size:
    # OpenMP barriers in thousands of tiny ops cost more than a second thread gains (measured)
    step = len(xyz) if xyz.is_cuda else max(1, LOOP_CPU_CHUNK_POINTS // n_points)
    return torch.cat([_fps_loop(xyz[i : i + step], n_samples, start_index)
                      for i in range(0, len(xyz), step)])


@torch.no_grad()
def _fps_loop(xyz: torch.Tensor, n_samples: int, start_index: int) -> torch.Tensor:
    batch, n_points, _ = xyz.shape
    # one contiguous (B, N) plane per coordinate and preallocated buffers: the loop is
    # sequential by nature, so the cost is the number and size of elementwise passes per step
    planes = xyz.permute(2, 0, 1).contiguous()
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
        for axis in (1, 2):
            torch.sub(planes[axis], centre[axis], out=diff)
            dist.add_(diff.square_())
        torch.minimum(nearest, dist, out=nearest)
        farthest = nearest.argmax(dim=1, keepdim=True)  # first maximum: ties to lowest index
    return index


def morton_order(xyz: torch.Tensor, bits: int = 10) -> torch.Tensor:
    """(B, N) permutation sorting each cloud along a Z-order curve of its bounding box: points
    close on the curve are close in space, so consecutive runs make compact blocks."""
    lo = xyz.amin(1, keepdim=True)
    extent = (xyz.amax(1, keepdim=True) - lo).clamp_min(torch.finfo(xyz.dtype).tiny)
    cells = ((xyz - lo) / extent * (2**bits - 1)).long()
    code = torch.zeros(xyz.shape[:2], dtype=torch.long, device=xyz.device)
    for bit in range(bits):
        for axis in range(3):
            code |= ((cells[..., axis] >> bit) & 1) << (3 * bit + axis)
    return code.argsort(dim=1)


@torch.no_grad()
def _fps_blocked(xyz: torch.Tensor, n_samples: int, start_index: int, block_size: int) -> torch.Tensor:
    batch, n_points, _ = xyz.shape
    device = xyz.device
    size = min(block_size, n_points)
    groups = -(-n_points // size)
    blocks = batch * groups
    # blocks of consecutive Morton-ordered points, each block in ascending original index; the
    # tail is padded with index n_points (padding is less than one block: no block is all pad)
    order = torch.nn.functional.pad(morton_order(xyz), (0, groups * size - n_points), value=n_points)
    original = order.view(blocks, size).sort(dim=1).values
    padded_xyz = torch.cat([xyz, xyz.new_zeros(batch, 1, 3)], 1)
    blocked = torch.gather(padded_xyz, 1, original.view(batch, -1, 1).expand(-1, -1, 3))
    blocked = blocked.view(blocks, size, 3)
    real = original < n_points

    # bounding spheres, centres as (3, batch, groups) planes; the reach test's margin is applied
    # to both terms of radius + sqrt(block max)
    big = torch.finfo(torch.float32).max
    lo = torch.where(real[..., None], blocked, big).amin(1)
    hi = torch.where(real[..., None], blocked, -big).amax(1)
    centre = (lo + hi) / 2
    radius = torch.where(real, (blocked - centre[:, None]).square().sum(-1), 0).amax(1).sqrt()
    centre_planes = centre.T.reshape(3, batch, groups).contiguous()
    radius = radius.view(batch, groups).mul_(1 + REACH_MARGIN)

    # x, y, z, the distance to the chosen set and the original index (exact in float32 below
    # 2**24 points) in one (5, blocks, size) tensor, so a step gathers what it needs about the
    # reached blocks with one index_select; padding has distance -inf and is never picked
    state = torch.cat([blocked.permute(2, 0, 1),
                       torch.where(real, float("inf"), float("-inf")).unsqueeze(0),
                       original.float().unsqueeze(0)]).contiguous()
    nearest = state[3]
    block_max = torch.full((batch, groups), float("inf"), device=device)
    block_cloud = torch.arange(batch, device=device).repeat_interleave(groups)
    flat_xyz = xyz.reshape(-1, 3)
    cloud_offset = torch.arange(batch, device=device) * n_points
    index = torch.empty(batch, n_samples, dtype=torch.long, device=device)
    farthest = torch.full((batch,), start_index, dtype=torch.long, device=device)
    for step in range(n_samples):
        index[:, step] = farthest
        if step == n_samples - 1:
            break
        point = flat_xyz.index_select(0, cloud_offset + farthest).T.unsqueeze(-1)  # (3, B, 1)
        # blocks the new point can reach: |centre - point| < radius + sqrt(block max)
        gap = (centre_planes[0] - point[0]).square_()
        gap += (centre_planes[1] - point[1]).square_()
        gap += (centre_planes[2] - point[2]).square_()
        reach = block_max.sqrt().mul_(1 + REACH_MARGIN).add_(radius)
        hit = (gap.sqrt_() < reach).view(-1).nonzero().squeeze(1)
        # the loop's distance, same operations in the same order, on the reached blocks only
        reached = state.index_select(1, hit)
        owner = block_cloud.index_select(0, hit)
        diff = reached[:3].sub_(point[:, :, 0].index_select(1, owner).unsqueeze(-1)).square_()
        dist = diff[0].add_(diff[1]).add_(diff[2])
        near = torch.minimum(reached[3], dist, out=reached[3])
        nearest.index_copy_(0, hit, near)
        block_max.view(-1).index_copy_(0, hit, near.amax(1))
        farthest = _lowest_index_of_maximum(block_max, state, block_cloud)
    return index


def _lowest_index_of_maximum(block_max, state, block_cloud) -> torch.Tensor:
    """Per cloud, the lowest original index among the points at the largest distance. Only the
    blocks holding that maximum (one per cloud but for exact ties) are searched point by point,
    with float reductions: index-returning reductions are slow in torch on CPU."""
    best = block_max.amax(1)
    holders = (block_max == best[:, None]).view(-1).nonzero().squeeze(1)
    owner = block_cloud.index_select(0, holders)
    rows = state[3:].index_select(1, holders)
    at_best = rows[0] == best.index_select(0, owner)[:, None]
    candidates = torch.where(at_best, rows[1], float("inf")).amin(1)
    lowest = torch.full_like(best, float("inf"))
    return lowest.scatter_reduce_(0, owner, candidates, "amin").long()


@functools.lru_cache(maxsize=None)
def numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _fps_numba(xyz: torch.Tensor, n_samples: int, start_index: int) -> torch.Tensor:
    if xyz.device.type != "cpu":
        raise ValueError("the numba backend runs on CPU tensors only (CUDA: backend='torch')")
    from .fps_numba import farthest_point_sample_numba

    planes = np.ascontiguousarray(xyz.numpy().transpose(0, 2, 1))
    if not np.isfinite(planes).all():
        # NaN would compare false everywhere: the picks would silently differ from the loop's
        raise ValueError("farthest point sampling needs finite coordinates (found NaN or inf)")
    index = farthest_point_sample_numba(planes, n_samples, start_index, torch.get_num_threads())
    return torch.from_numpy(index)


def _fps_fpsample(xyz: torch.Tensor, n_samples: int, start_index: int) -> torch.Tensor:
    import fpsample

    if xyz.device.type != "cpu":
        raise ValueError("the fpsample backend runs on CPU tensors only")
    clouds = xyz.numpy()
    rows = [fpsample.fps_sampling(c, n_samples, start_idx=start_index) for c in clouds]
    return torch.stack([torch.from_numpy(r.astype("int64")) for r in rows])
