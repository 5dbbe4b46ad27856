"""Series folders -> volumes: real CT/MR series from pydicom's test files (compared with MONAI's
PydicomReader), and series written from a real CT slice with chosen positions."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from facetvlp.domains.medical.dicom_read import read_dicom
from facetvlp.domains.medical.dicom_series import (
    InconsistentSeriesError,
    MissingSliceError,
    MixedSeriesError,
    read_dicom_series,
)

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


def test_real_ct_series_matches_monai_pydicom_reader_voxel_for_voxel():
    from monai.transforms import LoadImage

    folder = DICOMDIR_TESTS / "98892001" / "CT5N"  # 5 real CT slices, InstanceNumber runs head-to-foot
    ours = read_dicom_series(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = LoadImage(reader="PydicomReader", image_only=True)(str(folder))
    theirs_array, theirs_affine = np.asarray(theirs), np.asarray(theirs.affine, dtype=np.float64)
    ours_affine = np.array(ours.meta["affine"])
    assert ours.array.shape == (5, 16, 16) and theirs_array.shape == (16, 16, 5)
    assert ours.meta["spacing"] == pytest.approx([2.5, 0.488281, 0.488281])
    # MONAI stacks by InstanceNumber; we sort along the normal. Pair each of our slices with
    # MONAI's identical slice and check both affines put it at the same place in space.
    for k in range(5):
        matches = [m for m in range(5) if np.array_equal(theirs_array[:, :, m], ours.array[k].T)]
        assert len(matches) == 1
        for corner in ([0, 0], [15, 0], [0, 15], [15, 15]):
            ours_xyz = ours_affine @ [*corner, k, 1]
            theirs_xyz = theirs_affine @ [*corner, matches[0], 1]
            np.testing.assert_allclose(ours_xyz, theirs_xyz, atol=1e-4)
    # ascending along the normal (+z here): depth must increase with k
    assert ours_affine[2, 2] > 0


@pytest.mark.parametrize(
    "folder, error, reason",
    [
        ("77654033/CT2", MissingSliceError, "uneven slice gaps"),  # one slice, then a 202 mm jump
        ("98892001/CT2N", InconsistentSeriesError, "ImageOrientationPatient"),  # two localisers
        ("98892003/MR700", InconsistentSeriesError, "ImageOrientationPatient"),  # radial MR
        ("98892003/MR1", MixedSeriesError, "3 different SeriesInstanceUIDs"),
    ],
)
def test_real_irregular_folders_raise_clear_errors(folder, error, reason):
    path = DICOMDIR_TESTS / folder
    with pytest.raises(error, match=reason) as caught:
        read_dicom_series(path)
    assert str(path) in str(caught.value)


def _write_series(folder: Path, count=6, spacing=2.0, skip=(), series_uid=None):
    """Slices of the real CT_small at chosen positions on an oblique stack, each with its own
    HU offset (k*10) so that the order can be checked, InstanceNumbers deliberately scrambled."""
    folder.mkdir(exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = template.pixel_array.astype(np.int16)
    row_dir = np.array([np.cos(0.3), np.sin(0.3), 0.0])
    col_dir = np.array([0.0, 0.0, -1.0])
    normal = np.cross(row_dir, col_dir)
    series_uid = series_uid or generate_uid()
    for k in range(count):
        if k in skip:
            continue
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.ImageOrientationPatient = [*row_dir.round(6), *col_dir]
        ds.ImagePositionPatient = [round(v, 4) for v in (np.array([10.0, -20.0, 30.0]) + k * spacing * normal)]
        ds.InstanceNumber = (k * 5) % count + 1
        ds.PixelData = (pixels + 10 * k).astype(np.int16).tobytes()
        ds.save_as(folder / f"slice_{ds.InstanceNumber:03d}_{k}.dcm")
    return normal


def test_written_oblique_series_is_sorted_by_position_with_spacing_and_affine(tmp_path):
    normal = _write_series(tmp_path / "s", spacing=2.0)
    (tmp_path / "s" / "README.txt").write_text("not a slice")
    volume = read_dicom_series(tmp_path / "s")
    assert volume.array.shape == (6, 128, 128)
    for k in range(6):  # slice k carries +10*k HU
        np.testing.assert_array_equal(volume.array[k] - volume.array[0], np.full((128, 128), 10.0 * k))
    assert volume.meta["spacing"][0] == pytest.approx(2.0, abs=1e-3)
    assert volume.meta["ignored_files"] == 1
    affine = np.array(volume.meta["affine"])
    ras_normal = normal * [-1, -1, 1]
    np.testing.assert_allclose(affine[:3, 2], ras_normal * 2.0, atol=1e-3)
    np.testing.assert_allclose(affine[:3, 3], [-10.0, 20.0, 30.0], atol=1e-3)
    # HU by default, windowed to [0, 1] on request, slice by slice like read_dicom
    windowed = read_dicom_series(tmp_path / "s", window=(40, 400))
    first_file = sorted((tmp_path / "s").glob("*_0.dcm"))[0]
    np.testing.assert_allclose(windowed.array[0], read_dicom(first_file, window=(40, 400)).array, atol=1e-6)


def test_written_series_with_a_missing_slice_or_a_stray_series_is_refused(tmp_path):
    _write_series(tmp_path / "gap", skip=(3,))
    with pytest.raises(MissingSliceError, match="4.000 mm"):
        read_dicom_series(tmp_path / "gap")
    uid = generate_uid()
    _write_series(tmp_path / "mixed", count=4, series_uid=uid)
    _write_series(tmp_path / "mixed", count=1)  # one slice of another series, same folder
    with pytest.raises(MixedSeriesError) as caught:
        read_dicom_series(tmp_path / "mixed")
    assert uid not in str(caught.value)  # counts, never the UIDs


def test_real_mr_mosaic_folder_is_a_one_slice_volume(shared_data):
    folder = shared_data / "medical" / "dicom_mr_mosaic" / "ax" / "axasc35"
    volume = read_dicom_series(folder)
    assert volume.array.shape == (1, 384, 384)
    only = next(p for p in folder.iterdir() if p.is_file())
    np.testing.assert_array_equal(volume.array[0], read_dicom(only, window=None).array)
    thickness = float(pydicom.dcmread(only).SliceThickness)
    assert volume.meta["spacing"][0] in (thickness, pytest.approx(float(pydicom.dcmread(only).get("SpacingBetweenSlices", thickness))))
    assert os.fspath(folder) not in str(volume.meta)
