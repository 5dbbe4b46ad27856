"""Series folders -> volumes: real CT/MR series from pydicom's test files (compared with MONAI's
PydicomReader), and series written from a real CT slice with chosen positions."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from facetvlp.core.privacy import file_key
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
    assert caught.value.path == str(path) and file_key(path) in str(caught.value)  # the folder, by key


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


def _protocol_slice_centres(ds) -> np.ndarray:
    """Slice centres (LPS mm) as planned on the scanner: the Phoenix protocol text that Siemens
    keeps in the CSA series header, an independent record of where each slice was acquired."""
    raw = ds[0x0029, 0x1020].value
    text = raw[raw.find(b"### ASCCONV BEGIN"):raw.find(b"### ASCCONV END")].decode("latin-1")
    centres: dict[int, dict[str, float]] = {}
    for match in re.finditer(r"sSliceArray\.asSlice\[(\d+)\]\.sPosition\.d(Sag|Cor|Tra)\s*=\s*(\S+)", text):
        centres.setdefault(int(match.group(1)), {})[match.group(2)] = float(match.group(3))
    count = int(re.search(r"sSliceArray\.lSize\s*=\s*(\d+)", text).group(1))
    return np.array([[centres.get(i, {}).get(axis, 0.0) for axis in ("Sag", "Cor", "Tra")] for i in range(count)])


def test_real_siemens_mosaics_become_volumes_where_the_scanner_put_the_slices(shared_data):
    folders = sorted(p for p in (shared_data / "medical" / "dicom_mr_mosaic").glob("*/*") if p.is_dir())
    assert len(folders) == 19
    for folder in folders:
        path = next(p for p in folder.iterdir() if p.is_file())
        ds = pydicom.dcmread(path)
        volume = read_dicom_series(folder)
        count = int(ds[0x0019, 0x100A].value)  # NumberOfImagesInMosaic, Siemens private header
        assert volume.array.shape == (count, 64, 64) and volume.meta["mosaic"] is True
        # every slice is one 64x64 tile of the stored 384x384 mosaic
        mosaic = read_dicom(path, window=None).array
        tiles = [mosaic[r:r + 64, c:c + 64] for r in range(0, 384, 64) for c in range(0, 384, 64)][:count]
        flipped = folder.parent.name == "sag"  # sagittal tiles run against rows x columns
        for k in range(count):
            np.testing.assert_array_equal(volume.array[k], tiles[count - 1 - k if flipped else k])
        # each slice centre lies on a planned slice: exactly along the normal, and within the
        # half-pixel by which Siemens' planned centre (pixel N/2) differs from (N-1)/2 in-plane
        affine = np.array(volume.meta["affine"])
        row_dir, col_dir = np.array(volume.meta["orientation"][:3]), np.array(volume.meta["orientation"][3:])
        normal = np.cross(row_dir, col_dir)
        ours = np.array([(affine @ [31.5, 31.5, k, 1])[:3] * [-1, -1, 1] for k in range(count)])  # RAS -> LPS
        planned = _protocol_slice_centres(ds)
        nearest = np.linalg.norm(ours[:, None] - planned[None], axis=2).argmin(1)
        # the protocol's slice array and the mosaic's tiles are both in Siemens' slice order:
        # the volume slice holding tile i must sit on planned slice i
        tile_of = [count - 1 - k if flipped else k for k in range(count)]
        assert nearest.tolist() == tile_of
        offsets = ours - planned[nearest]
        assert np.abs(offsets @ normal).max() < 0.01
        assert np.abs(offsets @ row_dir).max() <= 3.25 and np.abs(offsets @ col_dir).max() <= 3.25
        assert volume.meta["spacing"][0] == pytest.approx(3.6, abs=1e-6)
        assert os.fspath(folder) not in str(volume.meta)
