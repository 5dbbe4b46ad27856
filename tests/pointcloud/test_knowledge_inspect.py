"""Shape knowledge and `facetvlp inspect` on point files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import laspy
import numpy as np
import pytest
import torch

from facetvlp.core.errors import ConfigError
from facetvlp.core.inspect import inspect_file
from facetvlp.core.registry import KNOWLEDGE, build
from facetvlp.domains.pointcloud.knowledge import DEFAULT_PATH, ShapeKnowledge

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "pointcloud"
MODELNET10 = ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa",
              "table", "toilet"]


def test_every_modelnet10_class_is_described():
    kb = build(KNOWLEDGE, dict(type="ShapeKnowledge", prompts="both"))
    prompts = kb.class_prompts(MODELNET10)
    assert set(prompts) == set(MODELNET10)
    for cls, texts in prompts.items():
        name = kb.display_name(cls)
        named = [t for t in texts if name in t]
        assert named == [t.format(name) for t in kb.templates()]
        assert len(texts) - len(named) >= 3 and len(set(texts)) == len(texts)
    assert kb.display_name("night_stand") == "nightstand"


def test_descriptions_never_name_an_object_class():
    # descriptions must carry geometry, not another class's name or the class's own
    kb = ShapeKnowledge(prompts="describe")
    names = {kb.display_name(c) for c in MODELNET10} - {"table"}  # "a wide table" is geometry
    for cls, texts in kb.class_prompts(MODELNET10).items():
        for text in texts:
            assert not any(n in text for n in names), (cls, text)


def test_prompt_styles_and_fallback():
    assert ShapeKnowledge(prompts="name").class_prompts(["chair"], templates=["{}!"]) == {
        "chair": ["chair!"]}
    described = ShapeKnowledge(prompts="describe").class_prompts(["chair", "spaceship"])
    assert "an object with a tall backrest." in described["chair"]
    assert described["spaceship"][0] == "a point cloud of a spaceship."  # no knowledge: name
    with pytest.raises(ConfigError, match="prompts"):
        ShapeKnowledge(prompts="poetic")


@pytest.mark.parametrize("kind", ["object", "lidar"])
def test_other_languages_are_refused_by_name_not_filled_with_english(kind):
    # the shape knowledge exists in English only (the fallback docs/pointcloud.md lists): a German
    # evaluation must stop with the languages there are, never silently prompt in English
    kb = ShapeKnowledge(kind=kind)
    with pytest.raises(ConfigError, match="in en only, not 'de'"):
        kb.class_prompts(["chair" if kind == "object" else "ground"], language="de")
    with pytest.raises(ConfigError, match="in en only, not 'de'"):
        kb.sample_texts("chair" if kind == "object" else "ground", language="de")


def test_facets_and_sample_texts():
    kb = ShapeKnowledge()
    facets = kb.facets("desk")
    assert set(facets) == {"name", "parts", "shape", "use"}
    texts = kb.sample_texts("desk")
    assert "a point cloud of a desk." in texts and "a point cloud of a writing desk." in texts
    assert set(facets["parts"] + facets["shape"]) <= set(texts)
    assert not set(facets["use"]) & set(texts)  # a point cloud shows no function
    assert ShapeKnowledge(descriptions=False).sample_texts("desk") == texts[:12]


def test_every_asprs_code_maps_to_a_concept():
    data = json.loads(DEFAULT_PATH.read_text())
    kb = ShapeKnowledge(kind="lidar")
    for code, concept in data["asprs_codes"].items():
        assert concept in data["concepts"]
        assert kb.asprs_concept(int(code)) == concept
    assert kb.class_prompts(["building"])["building"][0] == "an aerial LiDAR tile of buildings."


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


def test_attributes_are_geometry_from_one_vocabulary():
    kb = ShapeKnowledge(prompts="attributes")
    vocabulary = kb.attribute_vocabulary
    assert len(vocabulary) == len(set(vocabulary)) >= 10
    names = {kb.display_name(c) for c in MODELNET10}
    names |= {s for c in MODELNET10 for s in kb.concept(c)["synonyms"]}
    names -= {"seat"}  # a chair synonym, but also a part that chairs, sofas and toilets share
    used = set()
    prompts = kb.class_prompts(MODELNET10)
    for cls in MODELNET10:
        targets = kb.attribute_targets(cls)
        assert len(targets) == len(vocabulary) and set(targets) <= {0.0, 1.0}
        # the prompt is exactly the class's attribute statements, in vocabulary order
        assert prompts[cls] == [v for v, t in zip(vocabulary, targets) if t]
        assert not any(re.search(rf"\b{n}\b", text) for n in names for text in prompts[cls]), cls
        used |= set(prompts[cls])
    assert used == set(vocabulary)  # no statement is dead weight
    # distinct classes have distinct attribute sets, or attribute prompts could not tell them apart
    assert len({tuple(kb.attribute_targets(c)) for c in MODELNET10}) == len(MODELNET10)


def test_attribute_errors_name_the_class_and_file(tmp_path):
    data = json.loads(DEFAULT_PATH.read_text())
    data["concepts"]["chair"]["attributes"] = ["legs", "wings"]
    del data["concepts"]["table"]["attributes"]
    path = tmp_path / "shapes.json"
    path.write_text(json.dumps(data))
    kb = ShapeKnowledge(path=str(path), prompts="attributes")
    with pytest.raises(KeyError, match=r"'chair'.*wings"):
        kb.class_prompts(["chair"])
    with pytest.raises(KeyError, match=r"no attributes for 'table'"):
        kb.class_prompts(["table"])
