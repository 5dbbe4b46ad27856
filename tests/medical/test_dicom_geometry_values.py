"""Values and geometry that a plain CT slice does not exercise: enhanced multi-frame CT (rescale and
window in the functional groups, checked against highdicom), Pixel Padding, gantry tilt.

The enhanced file is made by highdicom's own LegacyConvertedEnhancedCTImage from the real 3-slice
CT series of dcmqi; the tilted series from the real 20-slice TotalSegmentator CT series."""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence

from facetvlp.core.privacy import file_key
from facetvlp.domains.medical.dicom_read import read_dicom
from facetvlp.domains.medical.dicom_series import InconsistentSeriesError, read_dicom_series

CT_3SLICE = "medical/dcmqi_ct_3slice_seg/data/segmentations/ct-3slice"
CT_20SLICE = "medical/totalseg_ct_mr_examples/tests/reference_files/example_ct_dicom"
# one (slope, intercept) and one (center, width) per frame, all different, so that a reader that
# takes frame 0's (or the top level's) for every frame cannot pass
FRAME_RESCALE = [(1.0, -1024.0), (2.0, -924.0), (0.5, -824.0)]
FRAME_WINDOW = [(40.0, 400.0), (300.0, 1500.0), (-600.0, 1200.0)]


def _quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():  # highdicom warns about the (real) single-component name
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def enhanced_ct(shared_data, tmp_path_factory) -> Path:
    """highdicom's Legacy Converted Enhanced CT over the real series, with the rescale and window
    moved from the Shared into the Per-Frame functional groups, different for each frame."""
    import highdicom as hd
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    slices = [pydicom.dcmread(p) for p in sorted((shared_data / CT_3SLICE).glob("*.dcm"))]
    converted = _quietly(
        LegacyConvertedEnhancedCTImage, slices, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1,
    )
    assert "RescaleSlope" not in converted  # the converter keeps the rescale in the groups only
    shared = converted.SharedFunctionalGroupsSequence[0]
    transformation = shared.PixelValueTransformationSequence
    del shared.PixelValueTransformationSequence, shared.FrameVOILUTSequence
    for item, (slope, intercept), (center, width) in zip(
        converted.PerFrameFunctionalGroupsSequence, FRAME_RESCALE, FRAME_WINDOW
    ):
        item.PixelValueTransformationSequence = copy.deepcopy(transformation)
        item.PixelValueTransformationSequence[0].RescaleSlope = slope
        item.PixelValueTransformationSequence[0].RescaleIntercept = intercept
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, width
        item.FrameVOILUTSequence = Sequence([voi])
    path = tmp_path_factory.mktemp("enhanced") / "enhanced_ct.dcm"
    converted.save_as(path)
    return path


def test_enhanced_ct_values_are_rescaled_per_frame_as_highdicom_does(enhanced_ct, shared_data):
    import highdicom as hd

    image = _quietly(hd.imread, enhanced_ct)
    ours = read_dicom(enhanced_ct, window=None).array
    assert ours.shape == (3, 512, 512)
    for index in range(3):
        # highdicom applies the modality transform of each frame's functional groups
        theirs = image.get_frame(index + 1, apply_real_world_transform=False, apply_modality_transform=True)
        np.testing.assert_array_equal(ours[index], theirs.astype(np.float32))
        np.testing.assert_array_equal(read_dicom(enhanced_ct, window=None, frame=index).array, ours[index])
    # frame 0 keeps the series' own rescale (1, -1024): it is one of the source slices in HU
    sources = [read_dicom(p, window=None).array for p in sorted((shared_data / CT_3SLICE).glob("*.dcm"))]
    assert sum(np.array_equal(ours[0], source) for source in sources) == 1


def test_enhanced_ct_header_window_is_each_frames_own_voi(enhanced_ct):
    import highdicom as hd

    image = _quietly(hd.imread, enhanced_ct)
    windowed = read_dicom(enhanced_ct)  # window="header"
    assert windowed.meta["window_source"] == "header"
    for index, (center, width) in enumerate(FRAME_WINDOW):
        values = image.get_frame(index + 1, apply_real_world_transform=False, apply_modality_transform=True)
        voi = Dataset()  # pydicom's LINEAR window with this frame's centre/width, scaled to [0, 1]
        voi.WindowCenter, voi.WindowWidth, voi.BitsStored, voi.PixelRepresentation = center, width, 16, 1
        voi.PhotometricInterpretation = "MONOCHROME2"
        low, high = apply_voi_lut(np.array([-1e9, 1e9]), voi)
        reference = (apply_voi_lut(values, voi) - low) / (high - low)
        np.testing.assert_allclose(windowed.array[index], reference, atol=1e-5)
        np.testing.assert_allclose(read_dicom(enhanced_ct, frame=index).array, reference, atol=1e-5)


def _without_window(source: Path, target: Path) -> Path:
    ds = pydicom.dcmread(source)
    del ds.WindowCenter, ds.WindowWidth
    ds.save_as(target)
    return target


def test_pixel_padding_never_sets_the_min_max_window(shared_data, tmp_path):
    source = sorted((shared_data / CT_3SLICE).glob("*.dcm"))[0]
    path = _without_window(source, tmp_path / "no_window.dcm")
    ds = pydicom.dcmread(path)
    padding = ds.pixel_array == ds.PixelPaddingValue
    assert padding.any()  # the real slice has air outside its reconstruction circle marked as padding
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    low, high = values[~padding].min(), values[~padding].max()
    assert low > values.min()  # padding (-3024 HU) lies below every real value here
    image = read_dicom(path)
    assert image.meta["window_source"] == "min_max"
    np.testing.assert_allclose(image.array, np.clip((values - low) / (high - low), 0, 1), atol=1e-6)
    # the percentile window ignores padding as well
    low, high = np.percentile(values[~padding], (1, 99))
    np.testing.assert_allclose(
        read_dicom(path, window="percentile", percentiles=(1, 99)).array,
        np.clip((values - low) / (high - low), 0, 1), atol=1e-5,
    )


def test_pixel_padding_never_sets_the_min_max_window_of_a_series(shared_data, tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    sources = sorted((shared_data / CT_3SLICE).glob("*.dcm"))
    for source in sources:
        _without_window(source, folder / source.name)
    stack = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    values = np.stack([apply_modality_lut(ds.pixel_array, ds).astype(np.float64) for ds in stack])
    real = np.stack([ds.pixel_array != ds.PixelPaddingValue for ds in stack])
    low, high = values[real].min(), values[real].max()
    volume = read_dicom_series(folder, window="header")
    assert volume.meta["window_source"] == "min_max"
    # the reader sorts along the normal, here the reverse of the file names
    expected = np.clip((values - low) / (high - low), 0, 1)
    np.testing.assert_allclose(volume.array, expected[::-1], atol=1e-6)


def _tilted_copy(shared_data: Path, folder: Path, degrees: float, jitter_slice: int | None = None) -> list[Path]:
    """The real series with each slice shifted along its column direction by k * spacing * tan(tilt),
    as a CT gantry tilted by ``degrees`` about the row axis writes it."""
    folder.mkdir()
    paths = sorted((shared_data / CT_20SLICE).iterdir())
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    orientation = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    depth = [np.array([float(v) for v in h.ImagePositionPatient]) @ normal for h in headers]
    written = []
    for rank, index in enumerate(np.argsort(depth)):
        ds = pydicom.dcmread(paths[index])
        position = np.array([float(v) for v in ds.ImagePositionPatient])
        shift = (depth[index] - min(depth)) * math.tan(math.radians(degrees))
        if rank == jitter_slice:
            shift += 3.0  # one slice off the line by 3 mm
        ds.ImagePositionPatient = [round(float(v), 4) for v in position + shift * orientation[3:]]
        ds.save_as(folder / f"{rank:02d}.dcm")
        written.append(folder / f"{rank:02d}.dcm")
    return written


def test_gantry_tilted_series_gets_the_affine_that_puts_every_slice_where_the_scanner_did(shared_data, tmp_path):
    paths = _tilted_copy(shared_data, tmp_path / "tilted", degrees=15.0)
    volume = read_dicom_series(tmp_path / "tilted")
    affine = np.array(volume.meta["affine"])
    assert volume.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=0.05)
    for k, path in enumerate(paths):  # sorted by depth, so file k is slice k
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        row_dir = np.array([float(v) for v in ds.ImageOrientationPatient[:3]])
        col_dir = np.array([float(v) for v in ds.ImageOrientationPatient[3:]])
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        for i, j in ((0, 0), (ds.Columns - 1, 0), (0, ds.Rows - 1), (100, 200)):
            # PS3.3 C.7.6.2.1.1: the LPS position of column i, row j of this slice, then RAS
            lps = ipp + i * col_spacing * row_dir + j * row_spacing * col_dir
            np.testing.assert_allclose((affine @ [i, j, k, 1])[:3], lps * [-1, -1, 1], atol=2e-3)
    untilted = read_dicom_series(shared_data / CT_20SLICE)
    assert untilted.meta["gantry_tilt_deg"] == 0.0
    np.testing.assert_array_equal(volume.array, untilted.array)  # same voxels, only placed otherwise


def test_slices_off_one_line_are_refused(shared_data, tmp_path):
    _tilted_copy(shared_data, tmp_path / "jitter", degrees=0.0, jitter_slice=7)
    with pytest.raises(InconsistentSeriesError, match="do not lie on one line") as caught:
        read_dicom_series(tmp_path / "jitter")
    # the series folder may name a patient: the message names it by its `facetvlp locate` key
    assert f"file {file_key(tmp_path / 'jitter')}" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)
