"""core.splits (the one split hash every domain uses) and core.images (the one Pillow reader).

References: a binomial bound on the validation share; Pillow-independent arrays written with
numpy and read back; torchvision's PIL-to-tensor conversion for colour images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.images import read_image_tensor, read_pil
from facetvlp.core.splits import check_split, in_validation, select_split


def test_validation_share_and_stability():
    groups = [f"patient-{i}" for i in range(20_000)]
    share = np.mean([in_validation(g, 0.2, seed=3) for g in groups])
    # binomial standard deviation sqrt(0.2 * 0.8 / 20000) = 0.0028: five of them
    assert abs(share - 0.2) < 0.015
    assert [in_validation(g, 0.2, 3) for g in groups[:50]] == [in_validation(g, 0.2, 3) for g in groups[:50]]
    assert [in_validation(g, 0.2, 3) for g in groups[:200]] != [in_validation(g, 0.2, 4) for g in groups[:200]]
    # a larger fraction only adds groups to validation
    assert all(in_validation(g, 0.5, 1) for g in groups[:500] if in_validation(g, 0.2, 1))


def test_select_split_partitions_by_group():
    items = [(f"case{i // 3}", i) for i in range(300)]  # three items per group
    train = select_split(items, lambda it: it[0], "train", 0.3, seed=1)
    val = select_split(items, lambda it: it[0], "val", 0.3, seed=1)
    assert sorted(train + val) == sorted(items) and not set(train) & set(val)
    assert not {g for g, _ in train} & {g for g, _ in val}  # no group straddles the split
    assert select_split(items, lambda it: it[0], "all", 0.3) == items
    with pytest.raises(ConfigError, match="split"):
        check_split("test")


class PhotoError(ReadError):
    pass


def test_read_pil_and_tensor_agree_with_pillow_and_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_pil(tmp_path / "rgb.png"), rgb)
    with Image.open(tmp_path / "rgb.png") as pil:
        expected = pil_to_tensor(pil).float() / 255
    torch.testing.assert_close(read_image_tensor(tmp_path / "rgb.png"), expected)
    grey = read_image_tensor(tmp_path / "rgb.png", mode="L")
    assert grey.shape == (1, 20, 30)
    # 16-bit grey using more than 8 bits: divided by 65535, one channel
    wide = rng.integers(0, 65536, (10, 12), dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    torch.testing.assert_close(read_image_tensor(tmp_path / "wide.png"),
                               torch.from_numpy(wide.astype(np.float32) / 65535)[None])


def test_bad_images_raise_the_callers_error_naming_the_file(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:200])
    for name, reason in (("text.png", "cannot decode image"), ("cut.jpg", "cannot decode image"),
                         ("missing.png", "no such file"), (".", "is a directory")):
        with pytest.raises(PhotoError, match=reason) as caught:
            read_image_tensor(tmp_path / name, PhotoError)
        assert str(caught.value.path) == str(tmp_path / name)
