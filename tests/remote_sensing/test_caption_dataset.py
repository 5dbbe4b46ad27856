"""COCO and Karpathy caption files (RSICD / UCM-captions layouts), text-only and with images."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import rasterio
from PIL import Image

from facetvlp.core.registry import DATASETS, build
from facetvlp.domains.remote_sensing.caption_dataset import (
    CaptionFileError,
    RSCaptionDataset,
    read_caption_file,
    scene_class,
)


@pytest.mark.parametrize("name", ["captions_test2017.json", "captions_val2017.json"])
def test_real_rsicd_coco_files(shared_data, name):
    path = shared_data / "remote_sensing/rsicd_captions" / name
    raw = json.loads(path.read_text())
    per_image = collections.defaultdict(list)
    for note in raw["annotations"]:
        per_image[note["image_id"]].append(note["caption"])
    dataset = build(DATASETS, {"type": "RSCaptionDataset", "annotations": str(path)})
    assert len(dataset) == len(raw["images"]) == len(per_image)
    assert sum(len(r["captions"]) for r in dataset.records) == len(raw["annotations"])
    for i in (0, len(dataset) // 2, len(dataset) - 1):
        item = dataset[i]
        image = raw["images"][i]
        assert item["meta"]["file_name"] == image["file_name"]
        assert len(item["text"]) == len(per_image[image["id"]]) == 5
        # tokenised captions ("near a viaduct .") come back as sentences
        for ours, theirs in zip(item["text"], per_image[image["id"]]):
            assert ours.replace(" ", "") == theirs.replace(" ", "")
            assert not ours.endswith(" .")
        assert "image" not in item


def test_scene_class_from_file_names(shared_data):
    path = shared_data / "remote_sensing/rsicd_captions/captions_val2017.json"
    classes = collections.Counter(scene_class(r["file_name"]) for r in read_caption_file(path))
    # PROVENANCE: 1,092 images: storagetanks 360, stadium 290, viaduct 248, square 194
    assert classes == {"storagetanks": 360, "stadium": 290, "viaduct": 248, "square": 194}
    assert scene_class("00917.jpg") is None
    assert scene_class("denseresidential_3.jpg") == "denseresidential"


def _karpathy(tmp_path, names):
    data = {"dataset": "ucm", "images": [
        {"filename": name, "imgid": i, "split": ("train", "val", "test")[i % 3],
         "sentences": [{"raw": f"caption {i} a .", "tokens": []},
                       {"raw": f"caption {i} b", "tokens": []}]}
        for i, name in enumerate(names)
    ]}
    path = tmp_path / "dataset_ucm.json"
    path.write_text(json.dumps(data))
    return path


def test_karpathy_layout_with_images_and_splits(tmp_path, shared_data):
    images = tmp_path / "imgs"
    images.mkdir()
    # real pixels: a Landsat scene as UCM-style TIFF and as PNG
    with rasterio.open(shared_data / "remote_sensing/landsat_geotiffs/RGB.byte.tif") as ds:
        rgb = ds.read(window=((200, 264), (300, 364)))
        profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint8")
    with rasterio.open(images / "1.tif", "w", **profile) as out:
        out.write(rgb)
    Image.fromarray(rgb.transpose(1, 2, 0)).save(images / "2.png")
    Image.fromarray(rgb.transpose(1, 2, 0)).save(images / "3.png")
    path = _karpathy(tmp_path, ["1.tif", "2.png", "3.png"])
    dataset = RSCaptionDataset(str(path), images=str(images), image_size=64)
    expected = rgb.astype(np.float32) / 255.0
    for i in range(3):
        item = dataset[i]
        np.testing.assert_allclose(item["image"].numpy(), expected, atol=1e-6)
        assert item["text"] == [f"caption {i} a.", f"caption {i} b"]
    assert [r["file_name"] for r in RSCaptionDataset(str(path), split="val").records] == ["2.png"]
    assert len(RSCaptionDataset(str(path), split=["train", "test"])) == 2
    resized = RSCaptionDataset(str(path), images=str(images), image_size=32)[1]["image"]
    assert resized.shape == (3, 32, 32)
    assert abs(float(resized.mean()) - float(expected.mean())) < 0.01


def test_missing_and_broken_images(tmp_path):
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "2.png").write_text("not a png")
    Image.fromarray(np.full((8, 8, 3), 200, dtype=np.uint8)).save(images / "3.png")
    path = _karpathy(tmp_path, ["1.tif", "2.png", "3.png"])
    raising = RSCaptionDataset(str(path), images=str(images))
    with pytest.raises(CaptionFileError, match="1.tif.*missing"):
        raising[0]
    with pytest.raises(CaptionFileError, match="2.png.*cannot decode image"):
        raising[1]
    skipping = RSCaptionDataset(str(path), images=str(images), on_error="skip")
    # the next readable item stands in, and the two unreadable ones are counted
    item = skipping[0]
    assert item["meta"]["file_name"] == "3.png" and item["meta"]["skipped"] == 2
    assert skipping.skipped == 2


def test_bad_caption_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CaptionFileError, match="bad.json: not valid JSON"):
        read_caption_file(bad)
    bad.write_text(json.dumps({"annotations": []}))
    with pytest.raises(CaptionFileError, match="no 'images' list"):
        read_caption_file(bad)
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                               "annotations": [{"image_id": 2, "caption": "x"}]}))
    with pytest.raises(CaptionFileError, match="names no known image"):
        read_caption_file(bad)
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                               "annotations": [{"image_id": 1, "caption": "x"}]}))
    with pytest.raises(CaptionFileError, match="no splits"):
        read_caption_file(bad, split="train")
    with pytest.raises(CaptionFileError, match="no such file"):
        read_caption_file(tmp_path / "absent.json")
