"""kNN, ball query and grouping against brute-force numpy references (FPS: test_fps.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facetvlp.domains.pointcloud.ops import ball_query, group, knn


@pytest.mark.parametrize("chunk", [10**9, 1000])  # one pass, and many small chunks
def test_knn_matches_brute_force(chunk):
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3, 500, 3, generator=g)
    query = torch.rand(3, 70, 3, generator=g)
    dist, index = knn(query, ref, k=8, chunk_elements=chunk)
    q, r = query.double().numpy(), ref.double().numpy()
    for b in range(3):
        d2 = ((q[b][:, None] - r[b][None]) ** 2).sum(-1)
        expected = np.sort(d2, axis=1)[:, :8]
        np.testing.assert_allclose(dist[b].double().numpy(), expected, rtol=1e-5, atol=1e-7)
        got = np.take_along_axis(d2, index[b].numpy(), axis=1)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("chunk", [10**9, 700])
def test_ball_query_matches_brute_force(chunk):
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(2, 400, 3, generator=g)
    query = torch.cat([ref[:, :30], torch.full((2, 1, 3), 5.0)], dim=1)  # last one: empty ball
    radius, k = 0.15, 16
    got = ball_query(query, ref, radius, k, chunk_elements=chunk).numpy()
    q, r = query.numpy(), ref.numpy()
    for b in range(2):
        for m in range(q.shape[1]):
            d2 = ((r[b] - q[b, m]) ** 2).sum(-1)
            inside = np.flatnonzero(d2 <= radius * radius)[:k]
            if len(inside) == 0:
                expected = np.full(k, np.argmin(d2))
            else:
                expected = np.concatenate([inside, np.full(k - len(inside), inside[0])])
            np.testing.assert_array_equal(got[b, m], expected)


def test_group_relative_coordinates():
    points = torch.rand(2, 50, 6)
    centres = points[:, :5, :3]
    _, index = knn(centres, points[..., :3], k=4)
    grouped = group(points, centres, index)
    assert grouped.shape == (2, 5, 4, 6)
    for b in range(2):
        for m in range(5):
            for j in range(4):
                p = points[b, index[b, m, j]]
                torch.testing.assert_close(grouped[b, m, j, :3], p[:3] - centres[b, m])
                torch.testing.assert_close(grouped[b, m, j, 3:], p[3:])
    # a centre's own nearest neighbour is itself: relative position zero
    assert grouped[:, :, 0, :3].abs().max() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ops_on_cuda_match_cpu():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 2048, 3, generator=g)
    d_gpu, _ = knn(x[:, :100].cuda(), x.cuda(), 8)
    d_cpu, _ = knn(x[:, :100], x, 8)
    torch.testing.assert_close(d_gpu.cpu(), d_cpu, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ball_query(x[:, :50].cuda(), x.cuda(), 0.1, 8).cpu(),
                               ball_query(x[:, :50], x, 0.1, 8))
