"""Depth rendering against a brute-force z-buffer; the multi-view evaluator's averaging."""

from __future__ import annotations

import math

import numpy as np
import torch

from facetvlp.domains.pointcloud.evaluators import MultiViewZeroShot
from facetvlp.domains.pointcloud.rendering import depth_maps, render_views, view_rotations


def test_rotations_are_proper():
    rots = view_rotations((0, 45, 190), elevation_deg=30)
    for r in rots:
        torch.testing.assert_close(r @ r.T, torch.eye(3), atol=1e-6, rtol=0)
        assert abs(float(torch.linalg.det(r)) - 1) < 1e-6
    # at zero elevation and azimuth, world z is image up and the camera sits at -y
    r0 = view_rotations((0,), 0.0)[0]
    torch.testing.assert_close(r0 @ torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(r0 @ torch.tensor([0.0, -1.0, 0.0]), torch.tensor([0.0, 0.0, 1.0]))


def test_depth_map_equals_brute_force_zbuffer():
    g = torch.Generator().manual_seed(0)
    pts = torch.nn.functional.normalize(torch.randn(2, 400, 3, generator=g), dim=-1)
    pts = pts * torch.rand(2, 400, 1, generator=g)
    size = 32
    rots = view_rotations((0, 90), 20.0)
    got = depth_maps(pts, rots, size)
    scale = 0.95 * size / 2
    for b in range(2):
        for v in range(2):
            expected = np.zeros((size, size))
            cam = pts[b].double().numpy() @ rots[v].double().numpy().T
            for x, y, z in cam:
                col = min(max(int(math.floor(x * scale + size / 2)), 0), size - 1)
                row = min(max(int(math.floor(-y * scale + size / 2)), 0), size - 1)
                near = min(max((z + 1) / 2, 0), 1) * 0.8 + 0.2
                expected[row, col] = max(expected[row, col], near)
            np.testing.assert_allclose(got[b, v].numpy(), expected, atol=1e-5)


def test_nearer_surface_is_brighter():
    # two parallel squares: the one at y = -0.5 faces the camera (camera at -y)
    grid = torch.stack(torch.meshgrid(torch.linspace(-0.4, 0.4, 30), torch.linspace(-0.4, 0.4, 30),
                                      indexing="ij"), -1).reshape(-1, 2)
    near = torch.stack([grid[:, 0], torch.full((900,), -0.5), grid[:, 1]], -1)
    far = torch.stack([grid[:, 0], torch.full((900,), 0.5), grid[:, 1]], -1)
    depth = depth_maps(torch.cat([far, near])[None], view_rotations((0,), 0.0), 64)[0, 0]
    lit = depth[depth > 0]
    assert torch.allclose(lit, torch.full_like(lit, (0.5 + 1) / 2 * 0.8 + 0.2))


def test_render_views_shape():
    views = render_views(torch.rand(3, 100, 3) - 0.5, azimuths=(0, 120, 240), size=48)
    assert views.shape == (3, 3, 3, 48, 48)


class _ViewCountingModel:
    """Image embedding = one-hot of the view's brightness rank; text = fixed class vectors."""

    def __init__(self):
        self.logit_scale = torch.tensor(0.0)

    def tokenize(self, texts):
        return {"texts": texts}

    def encode(self, modality, batch):
        if modality == "image":
            bright = batch["image"].mean(dim=(1, 2, 3))
            return torch.nn.functional.normalize(torch.stack([bright, -bright], -1), dim=-1)
        vecs = [[1.0, 0.0] if "bright" in t else [0.0, 1.0] for t in batch["text_input"]["texts"]]
        return torch.tensor(vecs)


class _Clouds(torch.utils.data.Dataset):
    classes = ["bright", "dark"]

    def __len__(self):
        return 4

    def __getitem__(self, i):
        big = i % 2 == 0  # a big cloud covers more pixels: brighter mean image
        pts = (torch.rand(800, 3, generator=torch.Generator().manual_seed(i)) - 0.5)
        pts = pts * (1.8 if big else 0.1)
        labels = torch.tensor([1.0, 0.0] if big else [0.0, 1.0])
        return {"points": pts, "labels": labels, "meta": {"index": i}}


def test_multiview_evaluator_scores(tmp_path):
    ev = MultiViewZeroShot(dataset=_Clouds(), templates=["{}"], image_size=32, batch_size=2)
    result = ev(_ViewCountingModel(), "cpu", tmp_path)
    assert result["multiview/top1"] == 1.0 and result["multiview/n"] == 4
    assert (tmp_path / "multiview_confusion.png").exists()
