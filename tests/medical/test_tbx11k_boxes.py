"""TBX11K box layout on the real shared sample: boxes land where the independent YOLO conversion
(made by the sample's repository author) puts them, scaled with the image to the model input."""

from __future__ import annotations

import pytest
import torch

from facetvlp.domains.medical.label_tables import TBX11K_CLASSES, TBX11KDataset


@pytest.fixture
def tbx(shared_data):
    root = shared_data / "medical" / "tbx11k_tb_boxes"
    if not root.is_dir():
        pytest.skip("tbx11k_tb_boxes not in shared data")
    return root


def yolo_boxes(path, side: float) -> list[tuple[int, list[float]]]:
    boxes = []
    for line in path.read_text().split("\n"):
        if line.strip():
            cls, cx, cy, w, h = line.split()
            cx, cy, w, h = (float(v) * side for v in (cx, cy, w, h))
            boxes.append((int(cls), [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
    return boxes


@pytest.mark.parametrize("image_size", [512, 256])
def test_boxes_match_the_independent_yolo_conversion(tbx, image_size):
    data = TBX11KDataset(tbx / "annotations/xml", tbx / "tbx11k-small-balanced/images", image_size=image_size)
    assert len(data) == 70
    assert data.queries == ["active tuberculosis", "obsolete pulmonary tuberculosis"]
    total = 0
    for index in range(0, 70, 7):
        item = data[index]
        name = data.records[index].path.stem
        reference = yolo_boxes(tbx / f"tbx11k-small-balanced/labels/train/{name}.txt", image_size)
        assert item["image"].shape == (3, image_size, image_size)
        assert len(reference) == len(item["boxes"])
        ours = sorted(zip(item["box_labels"].tolist(), item["boxes"].tolist()))
        for (cls, ref), (label, box) in zip(sorted(reference), ours):
            # YOLO class 0 = active, 1 = obsolete, the same order as TBX11K_CLASSES
            assert TBX11K_CLASSES[cls] == data.classes[label]
            assert box == pytest.approx(ref, abs=1.0 * image_size / 512 + 1e-3)
            total += 1
    assert total >= 10
