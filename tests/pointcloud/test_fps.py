"""Farthest point sampling against a textbook reference, open3d and fpsample on real clouds; the
numba kernels and both torch algorithms pick exactly what the loop picks: on real scans, exact
ties, duplicates, clouds far from the origin and every block size."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from facetvlp.domains.pointcloud import fps as fps_module
from facetvlp.domains.pointcloud.fps import farthest_point_sample, morton_order
from facetvlp.domains.pointcloud.readers import read_points

needs_numba = pytest.mark.skipif(not fps_module.numba_available(), reason="numba not installed")


def fps_reference(xyz: np.ndarray, m: int, start: int = 0) -> np.ndarray:
    """Textbook FPS, one point at a time, float32 squared distances, ties to the lowest index."""
    xyz = xyz.astype(np.float32)
    chosen = [start]
    nearest = np.full(len(xyz), np.inf, dtype=np.float32)
    for _ in range(m - 1):
        diff = xyz - xyz[chosen[-1]]
        nearest = np.minimum(nearest, (diff * diff).sum(1))
        chosen.append(int(np.argmax(nearest)))
    return np.array(chosen)


@pytest.fixture(scope="module")
def real_clouds(shared_data):
    files = sorted((shared_data / "pointcloud/modelnet10_train").glob("*/*_000[1-2].pcd"))
    return np.stack([read_points(f).xyz for f in files]).astype(np.float32)


def test_fps_matches_reference_on_real_clouds(real_clouds):
    got = farthest_point_sample(torch.from_numpy(real_clouds), 256)
    for cloud, row in zip(real_clouds, got.numpy()):
        np.testing.assert_array_equal(row, fps_reference(cloud, 256))


def test_fps_start_index_and_single_cloud(real_clouds):
    got = farthest_point_sample(torch.from_numpy(real_clouds[0]), 64, start_index=17)
    assert got.shape == (64,) and got[0] == 17
    np.testing.assert_array_equal(got.numpy(), fps_reference(real_clouds[0], 64, start=17))


def test_fps_fpsample_backend_matches_on_real_shapes(real_clouds):
    # same rule; near-ties can differ on other clouds (see ops.py), not on these twenty
    pytest.importorskip("fpsample")
    x = torch.from_numpy(real_clouds)
    torch.testing.assert_close(farthest_point_sample(x, 200, backend="fpsample"),
                               farthest_point_sample(x, 200, backend="torch"))


def test_fps_matches_open3d_on_a_large_real_scan(shared_data):
    o3d = pytest.importorskip("open3d")
    cloud = read_points(shared_data / "pointcloud/pcl_scans/car6.pcd").xyz
    ours = farthest_point_sample(torch.from_numpy(cloud), 512).numpy()
    ref = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud))
    picked = np.asarray(ref.farthest_point_down_sample(512).points)
    # open3d returns the chosen points in file order (SelectByIndex), not in pick order
    np.testing.assert_array_equal(cloud[np.sort(ours)], picked)


def test_fps_rejects_bad_sizes():
    with pytest.raises(ValueError):
        farthest_point_sample(torch.rand(2, 10, 3), 11)
    with pytest.raises(ValueError):
        farthest_point_sample(torch.rand(2, 10, 3), 3, start_index=10)


def both(x: torch.Tensor, m: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocked, loop); where numba is installed, also checks that its serial and parallel
    kernels give the loop's indices."""
    blocked = farthest_point_sample(x, m, algorithm="blocked", **kwargs)
    loop = farthest_point_sample(x, m, algorithm="loop", **kwargs)
    if fps_module.numba_available():
        kwargs.pop("block_size", None)
        for threads in (1, 2):
            with torch_threads(threads):
                assert torch.equal(farthest_point_sample(x, m, backend="numba", **kwargs), loop)
    return blocked, loop


class torch_threads:
    def __init__(self, n: int):
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self):
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


@pytest.fixture(scope="module")
def scans(shared_data):
    rng = np.random.default_rng(0)
    clouds = []
    for name in ("car6.pcd", "table_scene_mug_stereo_textured.pcd"):
        path = shared_data / "pointcloud/pcl_scans" / name
        if not path.exists():
            pytest.skip(f"{path} not in the shared data")
        xyz = read_points(path).xyz
        clouds.append(xyz[rng.choice(len(xyz), 6000, replace=False)])
    return np.stack(clouds).astype(np.float32)


@pytest.mark.parametrize("block_size", [1, 7, 64, 10_000])
def test_blocked_equals_reference_on_real_scans(scans, block_size):
    blocked, loop = both(torch.from_numpy(scans), 400, block_size=block_size)
    assert torch.equal(blocked, loop)
    for cloud, row in zip(scans, blocked.numpy()):
        np.testing.assert_array_equal(row, fps_reference(cloud, 400))


def test_exact_ties_go_to_the_lowest_index():
    # a shuffled integer grid: nearly every step has many points at exactly the same distance
    grid = np.stack(np.meshgrid(*[np.arange(9)] * 3, indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.random.default_rng(1).permutation(len(grid))].astype(np.float32)
    blocked, loop = both(torch.from_numpy(grid), 300, start_index=5, block_size=16)
    np.testing.assert_array_equal(blocked.numpy(), fps_reference(grid, 300, start=5))
    assert torch.equal(blocked, loop)


def test_duplicates_and_sampling_every_point():
    g = torch.Generator().manual_seed(3)
    base = torch.rand(40, 3, generator=g)
    cloud = torch.cat([base, base[:25], base[:5]])  # 70 points, 40 distinct
    blocked, loop = both(cloud, 70, block_size=8)
    np.testing.assert_array_equal(blocked.numpy(), fps_reference(cloud.numpy(), 70))
    assert torch.equal(blocked, loop)
    assert len(set(blocked[:40].tolist())) == 40  # every distinct point before any repeat


def test_clouds_far_from_the_origin():
    # projected (UTM-like) coordinates: the block test's rounding margin must still hold
    g = torch.Generator().manual_seed(4)
    cloud = torch.rand(2, 3000, 3, generator=g) * torch.tensor([40.0, 40.0, 8.0])
    cloud = cloud + torch.tensor([512_000.0, 96_000.0, 230.0])
    blocked, loop = both(cloud, 500, block_size=32)
    assert torch.equal(blocked, loop)
    for c, row in zip(cloud.numpy(), blocked.numpy()):
        np.testing.assert_array_equal(row, fps_reference(c, 500))


def test_tiny_clouds_and_argument_errors():
    one = torch.zeros(1, 3)
    assert farthest_point_sample(one, 1, algorithm="blocked").tolist() == [0]
    three = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]])
    assert farthest_point_sample(three, 3, algorithm="blocked").tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="algorithm"):
        farthest_point_sample(three, 2, algorithm="fast")
    with pytest.raises(ValueError, match="block_size"):
        farthest_point_sample(three, 2, block_size=0)


def test_morton_order_is_a_permutation_that_keeps_neighbours_together():
    g = torch.Generator().manual_seed(5)
    cloud = torch.rand(3, 4096, 3, generator=g)
    order = morton_order(cloud)
    assert torch.equal(order.sort(1).values, torch.arange(4096).expand(3, -1))
    ordered = torch.gather(cloud, 1, order.unsqueeze(-1).expand(-1, -1, 3))
    step = (ordered[:, 1:] - ordered[:, :-1]).norm(dim=-1).median()
    shuffled = (cloud[:, 1:] - cloud[:, :-1]).norm(dim=-1).median()
    assert step < shuffled / 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_blocked_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(6)
    x = torch.rand(4, 4096, 3, generator=g)
    want = farthest_point_sample(x, 256, algorithm="loop")
    assert torch.equal(farthest_point_sample(x.cuda(), 256, algorithm="blocked").cpu(), want)
    assert torch.equal(farthest_point_sample(x.cuda(), 256).cpu(), want)


@needs_numba
@pytest.mark.parametrize("threads", [1, 2])
def test_numba_matches_reference_on_real_shapes_and_open3d(real_clouds, threads):
    o3d = pytest.importorskip("open3d")
    with torch_threads(threads):
        got = farthest_point_sample(torch.from_numpy(real_clouds), 256, backend="numba")
    for cloud, row in zip(real_clouds, got.numpy()):
        np.testing.assert_array_equal(row, fps_reference(cloud, 256))
        ref = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.astype(np.float64)))
        picked = np.asarray(ref.farthest_point_down_sample(256).points)
        np.testing.assert_array_equal(cloud[np.sort(row)].astype(np.float64), picked)


@needs_numba
def test_numba_start_index_single_cloud_and_is_the_cpu_default(real_clouds):
    cloud = torch.from_numpy(real_clouds[3])
    got = farthest_point_sample(cloud, 100, start_index=41, backend="numba")
    np.testing.assert_array_equal(got.numpy(), fps_reference(real_clouds[3], 100, start=41))
    assert torch.equal(farthest_point_sample(cloud, 100, start_index=41), got)


def test_auto_falls_back_to_torch_without_numba(monkeypatch, real_clouds):
    def no_numba(*args):
        raise AssertionError("auto must not take the numba backend when numba is absent")

    monkeypatch.setattr(fps_module, "numba_available", lambda: False)
    monkeypatch.setattr(fps_module, "_fps_numba", no_numba)
    got = farthest_point_sample(torch.from_numpy(real_clouds[:2]), 64)
    for cloud, row in zip(real_clouds[:2], got.numpy()):
        np.testing.assert_array_equal(row, fps_reference(cloud, 64))
    with pytest.raises(ValueError, match="numba"):
        farthest_point_sample(torch.from_numpy(real_clouds[:2]), 64, backend="numba")


@needs_numba
def test_numba_rejects_non_finite_coordinates():
    cloud = torch.rand(50, 3)
    cloud[7, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        farthest_point_sample(cloud, 10, backend="numba")


@needs_numba
def test_numba_without_a_writable_cache_still_compiles(tmp_path):
    # no cache locator works (as on a read-only install with no writable home): the kernels
    # are compiled in-process instead, with a warning, and still pick the loop's indices
    script = (
        "import numba.core.caching as c\n"
        "(getattr(c, 'CacheImpl', None) or c._CacheImpl)._locator_classes = []\n"
        "import numpy as np, torch\n"
        "from facetvlp.domains.pointcloud import fps_numba\n"
        "from facetvlp.domains.pointcloud.fps import farthest_point_sample\n"
        "assert type(fps_numba.sample_cloud._cache).__name__ == 'NullCache'\n"
        "x = torch.rand(3, 300, 3, generator=torch.Generator().manual_seed(0))\n"
        "a = farthest_point_sample(x, 40, backend='numba')\n"
        "b = farthest_point_sample(x, 40, algorithm='loop')\n"
        "print(bool(torch.equal(a, b)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
    assert "cannot cache" in done.stderr
