"""Segmentation datasets against independent readers: PIL/numpy for the real lung-mask PNGs,
nibabel for the real TotalSegmentator NIfTI pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facetvlp.core.errors import ConfigError
from facetvlp.domains.medical.mask_datasets import MaskPairDataset
from facetvlp.domains.medical.volume_datasets import NiftiSegDataset, VolumeLabelError

LUNGS = "medical/cxr_lung_masks"
TOTALSEG = "medical/totalseg_ct_mr_examples/tests/reference_files"


def test_lung_masks_at_native_size_equal_pil_threshold(shared_data):
    dataset = MaskPairDataset(shared_data / LUNGS, image_size=512, mean=[0.0], std=[1.0])
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        name = dataset.names[index]
        assert name not in repr(sample["meta"])  # files are named by salted key in meta
        image = np.asarray(Image.open(shared_data / LUNGS / "cxr" / name).convert("L")) / 255.0
        mask = np.asarray(Image.open(shared_data / LUNGS / "masks" / name).convert("L")) > 127
        np.testing.assert_allclose(sample["image"][0].numpy(), image, atol=1e-6)
        np.testing.assert_array_equal(sample["seg"].numpy(), mask.astype(np.int64))
        assert sample["seg"].dtype == torch.int64
    assert dataset.seg_classes == ["background", "lung"]


def test_split_is_patient_disjoint_and_complete(shared_data):
    root = shared_data / LUNGS
    train, val = MaskPairDataset(root, split="train"), MaskPairDataset(root, split="val")
    everything = MaskPairDataset(root)
    train_groups = {train.group_of(i) for i in range(len(train))}
    val_groups = {val.group_of(i) for i in range(len(val))}
    assert not train_groups & val_groups
    assert sorted(train.names + val.names) == everything.names
    assert len(everything) == 178 and 0 < len(val) < len(train)
    assert everything.group_of(everything.names.index("MCUCXR_0001_0.png")) == "MCUCXR_0001"


def test_separate_left_right_masks_are_united_and_padding_is_ignored(shared_data, tmp_path):
    """Montgomery's original layout (leftMask/rightMask), on a non-square crop of a real pair."""
    name = "MCUCXR_0001_0.png"
    image = np.asarray(Image.open(shared_data / LUNGS / "cxr" / name).convert("L"))[:, :384]
    mask = np.asarray(Image.open(shared_data / LUNGS / "masks" / name).convert("L"))[:, :384]
    (tmp_path / "CXR_png").mkdir()
    for side in ("leftMask", "rightMask"):
        (tmp_path / "ManualMask" / side).mkdir(parents=True)
    Image.fromarray(image).save(tmp_path / "CXR_png" / name)
    left, right = mask.copy(), mask.copy()
    left[:, 192:], right[:, :192] = 0, 0
    Image.fromarray(left).save(tmp_path / "ManualMask" / "leftMask" / name)
    Image.fromarray(right).save(tmp_path / "ManualMask" / "rightMask" / name)
    Image.fromarray(image).save(tmp_path / "CXR_png" / "no_mask.png")

    dataset = MaskPairDataset(tmp_path, image_dir="CXR_png",
                              mask_dirs=["ManualMask/leftMask", "ManualMask/rightMask"], image_size=512)
    assert dataset.unmatched == ["no_mask.png"] and len(dataset) == 1
    seg = dataset[0]["seg"].numpy()
    np.testing.assert_array_equal(seg[:, :384], (mask > 127).astype(np.int64))
    assert (seg[:, 384:] == -1).all()  # the letterbox padding is "ignore", not background
    assert dataset[0]["meta"]["original_shape"] == [512, 384]


def test_no_pairs_is_a_config_error(tmp_path):
    (tmp_path / "cxr").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ConfigError, match="no image/mask pairs"):
        MaskPairDataset(tmp_path)


def test_nifti_pair_matches_nibabel(shared_data):
    import nibabel as nib

    folder = shared_data / TOTALSEG
    dataset = NiftiSegDataset([dict(image=str(folder / "example_ct_sm.nii.gz"),
                                    label=str(folder / "example_seg.nii.gz"))],
                              seg_classes=["background", "liver", "kidney"],
                              label_values={"liver": 5, "kidney": [2, 3]}, intensity_range=None)
    sample = dataset[0]
    image = nib.as_closest_canonical(nib.load(folder / "example_ct_sm.nii.gz"))
    label = np.asarray(nib.as_closest_canonical(nib.load(folder / "example_seg.nii.gz")).dataobj)
    hu = image.get_fdata()
    # ours: (slices, rows, columns) = nibabel's RAS (x, y, z) reversed
    np.testing.assert_allclose(sample["image"][0].numpy(), hu.transpose(2, 1, 0), atol=1e-3)
    expected = np.zeros(label.shape, dtype=np.int64)
    expected[label == 5] = 1
    expected[(label == 2) | (label == 3)] = 2
    np.testing.assert_array_equal(sample["seg"].numpy(), expected.transpose(2, 1, 0))
    assert sample["meta"]["spacing"] == pytest.approx([3.0, 3.0, 3.0])


def test_nifti_resize_and_grid_mismatch(shared_data, tmp_path):
    import nibabel as nib

    folder = shared_data / TOTALSEG
    dataset = NiftiSegDataset([dict(image=str(folder / "example_ct_sm.nii.gz"),
                                    label=str(folder / "example_seg.nii.gz"))],
                              seg_classes=["background", "liver"], label_values={"liver": 5},
                              spatial_size=(16, 64, 64))
    sample = dataset[0]
    assert sample["image"].shape == (1, 16, 64, 64) and sample["seg"].shape == (16, 64, 64)
    assert 0.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
    assert set(sample["seg"].unique().tolist()) == {0, 1}
    # 30 x 101 x 122 voxels of 3 mm -> 16 x 64 x 64: the spacing follows the grid
    assert sample["meta"]["spacing"] == pytest.approx([3.0 * 30 / 16, 3.0 * 101 / 64, 3.0 * 122 / 64])
    # a label map on another grid is refused, naming the label file
    label = nib.load(folder / "example_seg.nii.gz")
    cropped = nib.Nifti1Image(np.asarray(label.dataobj)[:, :, :20], label.affine)
    nib.save(cropped, tmp_path / "short.nii.gz")
    bad = NiftiSegDataset([dict(image=str(folder / "example_ct_sm.nii.gz"), label=str(tmp_path / "short.nii.gz"))],
                          seg_classes=["background", "liver"], label_values={"liver": 5})
    with pytest.raises(VolumeLabelError, match="does not match its image") as caught:
        bad[0]
    assert caught.value.path.endswith("short.nii.gz") and "short.nii.gz" not in str(caught.value)


def brute_force_label_hu(series: Path, label_path: Path, value: int) -> np.ndarray:
    """HU under every voxel of a label map, found by mapping each labelled voxel through the NIfTI
    affine (RAS mm) to DICOM patient coordinates (LPS) and from there into its slice's pixel grid
    with pydicom's ImagePositionPatient / ImageOrientationPatient / PixelSpacing."""
    import nibabel as nib
    import pydicom

    slices = [pydicom.dcmread(p) for p in sorted(series.iterdir())]
    label = nib.load(label_path)
    ijk = np.argwhere(np.asarray(label.dataobj) == value)
    ras = nib.affines.apply_affine(label.affine, ijk)
    lps = ras * np.array([-1.0, -1.0, 1.0])
    by_z = {round(float(ds.ImagePositionPatient[2]), 2): ds for ds in slices}
    hu = []
    for point in lps:
        ds = by_z[round(float(point[2]), 2)]
        origin = np.array(ds.ImagePositionPatient, dtype=float)
        row_dir, col_dir = np.array(ds.ImageOrientationPatient[:3]), np.array(ds.ImageOrientationPatient[3:])
        offset = point - origin
        column = int(round(offset @ row_dir / float(ds.PixelSpacing[1])))
        row = int(round(offset @ col_dir / float(ds.PixelSpacing[0])))
        hu.append(float(ds.pixel_array[row, column]) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.array(hu)


def test_nifti_label_on_a_dicom_series_lands_on_the_right_voxels(shared_data):
    folder = shared_data / TOTALSEG
    series, label = folder / "example_ct_dicom", folder / "example_seg_dicom.nii.gz"
    dataset = NiftiSegDataset([dict(image=str(series), label=str(label))],
                              seg_classes=["background", "spleen"], label_values={"spleen": 1},
                              intensity_range=None)
    sample = dataset[0]
    image, seg = sample["image"][0].numpy(), sample["seg"].numpy()
    expected = brute_force_label_hu(series, label, 1)
    # same voxels (count) with the same intensities (sorted values) as the independent mapping
    np.testing.assert_allclose(np.sort(image[seg == 1]), np.sort(expected), atol=1e-3)
    assert sample["meta"]["spacing"] == pytest.approx([2.0, 0.9765625, 0.9765625])
    assert str(series) not in json.dumps(sample["meta"])


def test_spacing_resamples_both_scans_onto_one_voxel_size(shared_data):
    folder = shared_data / TOTALSEG
    series, label = folder / "example_ct_dicom", folder / "example_seg_dicom.nii.gz"
    native = NiftiSegDataset([dict(image=str(series), label=str(label))], seg_classes=["background", "liver"],
                             label_values={"liver": 5})[0]
    coarse = NiftiSegDataset([dict(image=str(series), label=str(label))], seg_classes=["background", "liver"],
                             label_values={"liver": 5}, spacing=(3.0, 3.0, 3.0))[0]
    assert coarse["meta"]["spacing"] == pytest.approx([3.0, 3.0, 3.0])
    # 20 slices of 2 mm, 512 columns of 0.977 mm -> about 40 / 3 and 500 / 3 voxels of 3 mm
    assert coarse["seg"].shape[0] in (13, 14) and abs(coarse["seg"].shape[2] - 500 / 3) <= 1.5
    # nearest resampling keeps the organ's volume (mm^3) to within a few per cent
    native_mm3 = float((native["seg"] == 1).sum()) * 2.0 * 0.9765625 ** 2
    coarse_mm3 = float((coarse["seg"] == 1).sum()) * 27.0
    # (the 40 mm slab gains or loses part of a 3 mm voxel at each end: up to ~8 %)
    assert coarse_mm3 == pytest.approx(native_mm3, rel=0.08)
