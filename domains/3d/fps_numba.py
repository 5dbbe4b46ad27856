"""Farthest point sampling as numba kernels for CPU: the textbook loop, compiled.

The torch paths in fps.py pay 5-30 us of dispatch per eager operation and a step needs several,
which caps them at a quarter of open3d's C++ loop. Compiled, a step is three tight passes over
the cloud, each of them SIMD-vectorised by LLVM without any fast-math licence:

1. the update: ``nearest = min(nearest, (dx*dx + dy*dy) + dz*dz)`` in float32, the operations
   and their order exactly as fps.py states them (fastmath stays off, so LLVM neither reorders
   nor fuses them into FMAs: every distance is bit-identical to the torch loop's);
2. the largest distance, as an int32 maximum over the same bits: distances are never negative,
   and non-negative IEEE floats order like their bit patterns, so this is the float maximum,
   while an integer reduction, unlike a float one, vectorises without fast-math;
3. the first index holding that maximum (ties go to the lowest index, as in the torch loop).

Clouds of a batch are independent: the parallel kernel runs them on numba's thread pool
(``prange``), one cloud per task. Kernels are compiled on first use and cached on disk
(``cache=True``: numba's ``__pycache__`` next to this file, or NUMBA_CACHE_DIR); where no cache
location is writable they are compiled per process instead.
"""

from __future__ import annotations

import logging

import numba
import numpy as np

log = logging.getLogger(__name__)


def _compile(function, **options):
    """njit with an on-disk cache, or without one where numba finds no writable location."""
    try:
        return numba.njit(cache=True, fastmath=False, **options)(function)
    except (RuntimeError, OSError) as exc:  # numba: "cannot cache function ...: no locator"
        log.warning("numba cannot cache %s (%s): compiling it in every process",
                    function.__name__, exc)
        return numba.njit(cache=False, fastmath=False, **options)(function)


def _sample_cloud(x, y, z, n_samples, start_index, out, nearest):
    """One cloud given as coordinate planes x, y, z (N,) float32; writes n_samples indices into
    out and uses nearest (N,) float32 as scratch."""
    n_points = x.shape[0]
    nearest_bits = nearest.view(np.int32)
    for i in range(n_points):
        nearest[i] = np.inf
    farthest = start_index
    for step in range(n_samples):
        out[step] = farthest
        if step == n_samples - 1:
            break
        cx, cy, cz = x[farthest], y[farthest], z[farthest]
        for i in range(n_points):
            dx = x[i] - cx
            dy = y[i] - cy
            dz = z[i] - cz
            dist = (dx * dx + dy * dy) + dz * dz
            kept = nearest[i]
            if dist < kept:
                kept = dist
            nearest[i] = kept
        best = np.int32(-1)
        for i in range(n_points):
            bits = nearest_bits[i]
            if bits > best:
                best = bits
        for i in range(n_points):
            if nearest_bits[i] == best:
                farthest = i
                break


sample_cloud = _compile(_sample_cloud)


def _sample_batch_serial(planes, n_samples, start_index, out):
    nearest = np.empty(planes.shape[2], dtype=np.float32)
    for b in range(planes.shape[0]):
        sample_cloud(planes[b, 0], planes[b, 1], planes[b, 2], n_samples, start_index, out[b],
                     nearest)


def _sample_batch_parallel(planes, n_samples, start_index, out):
    for b in numba.prange(planes.shape[0]):
        nearest = np.empty(planes.shape[2], dtype=np.float32)
        sample_cloud(planes[b, 0], planes[b, 1], planes[b, 2], n_samples, start_index, out[b],
                     nearest)


sample_batch_serial = _compile(_sample_batch_serial)
sample_batch_parallel = _compile(_sample_batch_parallel, parallel=True)


def farthest_point_sample_numba(planes: np.ndarray, n_samples: int, start_index: int,
                                threads: int) -> np.ndarray:
    """Indices (B, n_samples) int64 for C-contiguous float32 planes (B, 3, N), clouds spread over
    `threads` numba threads (one thread: the serial kernel, no thread pool involved)."""
    out = np.empty((planes.shape[0], n_samples), dtype=np.int64)
    threads = min(threads, planes.shape[0], numba.config.NUMBA_NUM_THREADS)
    if threads <= 1:
        sample_batch_serial(planes, n_samples, start_index, out)
        return out
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        sample_batch_parallel(planes, n_samples, start_index, out)
    finally:
        numba.set_num_threads(previous)
    return out
