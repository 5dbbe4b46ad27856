"""Datasets on the real ModelNet10 and LiDAR files: sizes, labels, splits, on_error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import laspy
import numpy as np
import pytest
import torch

from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.domains.pointcloud.datasets import LidarTileDataset, ShapeFolderDataset
from facetvlp.domains.pointcloud.knowledge import DEFAULT_PATH, ShapeKnowledge

REPO = Path(__file__).resolve().parents[2]
DEMO_LAS = REPO / "data/pointcloud/lidar_las/file_with_both_wkt_and_geotiff_vlrs.las"


@pytest.fixture(scope="module")
def modelnet(shared_data):
    return shared_data / "pointcloud" / "modelnet10_train"


def test_shape_folder_sample(modelnet):
    ds = ShapeFolderDataset(modelnet, classes=["chair", "toilet"], max_per_class=5)
    assert len(ds) == 10 and ds.classes == ["chair", "toilet"]
    sample = ds[7]
    assert sample["points"].shape == (1024, 3) and sample["points"].dtype == torch.float32
    assert torch.allclose(sample["points"].mean(0), torch.zeros(3), atol=1e-5)
    assert abs(float(sample["points"].norm(dim=1).max()) - 1.0) < 1e-5
    assert sample["labels"].tolist() == [0.0, 1.0]
    assert sample["meta"]["class"] == "toilet" and sample["meta"]["source"].startswith("toilet/")
    assert any("toilet" in t for t in sample["text"])


def test_splits_partition_the_files(modelnet):
    all_ = ShapeFolderDataset(modelnet, classes=["desk"], split="all")
    train = ShapeFolderDataset(modelnet, classes=["desk"], split="train")
    val = ShapeFolderDataset(modelnet, classes=["desk"], split="val", val_fraction=0.2)
    names = lambda d: {p for p, _ in d.items}  # noqa: E731
    assert names(train) | names(val) == names(all_) and not names(train) & names(val)
    assert 0.1 < len(val) / len(all_) < 0.3


def test_shape_folder_resamples_to_fixed_size(modelnet):
    ds = ShapeFolderDataset(modelnet, classes=["bed"], num_points=300, max_per_class=2)
    assert ds[0]["points"].shape == (300, 3)
    ds = ShapeFolderDataset(modelnet, classes=["bed"], num_points=2000, max_per_class=2)
    assert ds[1]["points"].shape == (2000, 3)


def test_same_seed_epoch_index_same_augmentation(modelnet):
    kw = dict(classes=["sofa"], max_per_class=3, augment=dict(dropout_max=0.3))
    a, b = ShapeFolderDataset(modelnet, **kw), ShapeFolderDataset(modelnet, **kw)
    assert torch.equal(a[1]["points"], b[1]["points"])
    b.set_epoch(1)
    assert not torch.equal(a[1]["points"], b[1]["points"])


def test_on_error_skip_and_raise(modelnet, tmp_path):
    root = tmp_path / "shapes"
    (root / "chair").mkdir(parents=True)
    for src in sorted((modelnet / "chair").glob("*.pcd"))[:2]:
        shutil.copy(src, root / "chair" / src.name)
    (root / "chair" / "chair_0000.pcd").write_bytes(b"# broken\nVERSION 0.7\n")
    strict = ShapeFolderDataset(root, on_error="raise")
    with pytest.raises(ReadError, match="chair_0000.pcd"):
        strict[0]
    lenient = ShapeFolderDataset(root, on_error="skip")
    sample = lenient[0]
    assert sample["meta"]["skipped"] == 1 and sample["meta"]["source"] == "chair/chair_0001.pcd"


def test_with_image_renders_a_view(modelnet):
    ds = ShapeFolderDataset(modelnet, classes=["monitor"], max_per_class=1,
                            with_image=dict(size=64))
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 64)


def test_lidar_tiles_match_laspy():
    las = laspy.read(DEMO_LAS)
    xyz = np.stack([las.x, las.y, las.z], 1)
    codes = np.asarray(las.classification)
    ds = LidarTileDataset([str(DEMO_LAS)], tile_size=10.0, classes=(2, 5, 6), num_points=256)
    origin = xyz[:, :2].min(0)
    total = 0
    for i in range(len(ds)):
        _, ix, iy = ds.tiles[i]
        cell = np.floor((xyz[:, :2] - origin) / 10.0).astype(int)
        inside = (cell[:, 0] == ix) & (cell[:, 1] == iy)
        sample = ds[i]
        assert sample["meta"]["points_in_tile"] == int(inside.sum())
        total += int(inside.sum())
        # the most common class of the tile per laspy is the first named in the caption
        tile_codes = codes[inside]
        known = tile_codes[np.isin(tile_codes, [2, 5, 6])]
        dominant = {2: "ground", 5: "high_vegetation", 6: "building"}[int(np.bincount(known).argmax())]
        assert sample["meta"]["label"] == dominant
        assert sample["points"].shape == (256, 3)
        assert sample["points"][:, :2].abs().max() <= 1.0 + 1e-6 and sample["points"][:, 2].min() >= 0
        seg = sample["seg"]
        assert seg.shape == (256,) and set(seg.tolist()) <= {-1, 0, 1, 2}
    assert total == len(xyz)  # min_points=64 keeps every tile of this file


def test_lidar_dominant_labels_are_one_hot():
    ds = LidarTileDataset([str(DEMO_LAS)], tile_size=10.0, classes=(2, 5, 6), labels="dominant")
    for i in range(len(ds)):
        labels = ds[i]["labels"]
        assert labels.sum() == 1 and ds.classes[int(labels.argmax())] == ds[i]["meta"]["label"]


def test_attribute_queries_give_each_item_its_class_attributes(modelnet):
    knowledge = dict(type="ShapeKnowledge", prompts="attributes")
    ds = ShapeFolderDataset(modelnet, classes=["chair", "toilet"], max_per_class=2,
                            knowledge=knowledge, attribute_queries=True)
    kb = ShapeKnowledge()
    assert ds.queries == kb.attribute_vocabulary
    for i in range(len(ds)):
        sample = ds[i]
        want = kb.attribute_targets(sample["meta"]["class"])
        assert sample["query_targets"].tolist() == want
    assert "query_targets" not in ShapeFolderDataset(modelnet, classes=["chair"], max_per_class=1)[0]


def test_attribute_queries_need_attributes_for_every_class(modelnet, tmp_path):
    data = json.loads(DEFAULT_PATH.read_text())
    del data["concepts"]["chair"]["attributes"]
    (tmp_path / "shapes.json").write_text(json.dumps(data))
    knowledge = dict(type="ShapeKnowledge", path=str(tmp_path / "shapes.json"))
    with pytest.raises(ConfigError, match=r"attribute_queries.*'chair'"):
        ShapeFolderDataset(modelnet, classes=["toilet", "chair"], max_per_class=1,
                           attribute_queries=True, knowledge=knowledge)
