"""read_dicom against pydicom's own decoding (pixel_array + apply_modality_lut / apply_voi_lut) on
every file of pydicom's test corpus and of ../shared/data/medical, plus the documented errors."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence

from facetvlp.core.errors import ReadError, UnsupportedFileError
from facetvlp.core.privacy import file_key
from facetvlp.core.sample import check_sample
from facetvlp.domains.medical.dicom_read import (
    DicomReadError,
    MalformedDicomError,
    NotAnImageError,
    NotDicomError,
    TruncatedDicomError,
    UndecodablePixelDataError,
    load_dicom_sample,
    read_dicom,
)

REPO = Path(__file__).resolve().parents[2]
SHARED_MEDICAL = Path(os.environ.get("FACETVLP_SHARED_DATA", REPO.parent / "shared" / "data")) / "medical"
PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
DOCS = (REPO / "docs" / "medical_dicom.md").read_text() if (REPO / "docs" / "medical_dicom.md").exists() else ""

# Every file that must NOT decode, the error it gets, and why (the same list is in docs/).
EXPECTED_ERRORS = {
    "JPEG-lossy.dcm": UndecodablePixelDataError,  # 12-bit JPEG with invalid SOS scan parameters
    "JPEG2000-embedded-sequence-delimiter.dcm": UndecodablePixelDataError,  # codestream bytes overwritten
    "MR_truncated.dcm": TruncatedDicomError,
    "badVR.dcm": MalformedDicomError,  # Number of Frames '1A'
    "meta_missing_tsyntax.dcm": MalformedDicomError,
    "nested_priv_SQ.dcm": MalformedDicomError,
    "liver_1frame.dcm": NotAnImageError,  # DICOM-SEG
    "liver_expb_1frame.dcm": NotAnImageError,
    "no_meta.dcm": NotDicomError,  # CT_small's data set behind one stray byte, no preamble
    "UN_sequence.dcm": TruncatedDicomError,  # claims CT Image Storage, holds one private sequence
    "no_meta_group_length.dcm": TruncatedDicomError,  # RT Image Storage header, no Pixel Data
    "priv_SQ.dcm": TruncatedDicomError,  # MR Image Storage meta, one private sequence
}
for _name in ("rtplan.dcm", "rtplan_truncated.dcm", "rtstruct.dcm", "reportsi.dcm", "test-SR.dcm",
              "reportsi_with_empty_number_tags.dcm", "waveform_ecg.dcm", "ExplVR_BigEndNoMeta.dcm",
              "ExplVR_LitEndNoMeta.dcm", "empty_charset_LEI.dcm"):
    EXPECTED_ERRORS[_name] = NotAnImageError
for _name in ("README.txt", "README", "crayons.icc", "rtplan.dump", "rtstruct.dump", "test1.json",
              "test_PN.json", "zipMR.gz"):
    EXPECTED_ERRORS[_name] = NotDicomError


def expected_error(path: Path):
    if path.name.startswith("DICOMDIR"):
        return NotAnImageError  # a directory record, no pixels
    if "TINY_ALPHA" in path.parts and path.name.startswith("IM"):
        return TruncatedDicomError  # CT Image Storage headers written without Pixel Data
    return EXPECTED_ERRORS.get(path.name)


def pydicom_reference(path) -> np.ndarray:
    """What read_dicom(path) must equal, computed only with pydicom's public API."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array  # pydicom's defaults: YCbCr -> RGB, all frames
    photometric = ds.PhotometricInterpretation
    if photometric == "PALETTE COLOR":
        return apply_color_lut(pixels, ds) / (2.0 ** ds.RedPaletteColorLookupTableDescriptor[2] - 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return pixels / (2.0**ds.BitsStored - 1)
    values = apply_modality_lut(pixels, ds).astype(np.float64)
    if "VOILUTSequence" in ds or "WindowCenter" in ds:
        shown = apply_voi_lut(values, ds)
        # pydicom maps below/above the window to its output limits: read them off two extremes
        low, high = apply_voi_lut(np.array([-1e12, 1e12]), ds)
        result = (shown - low) / (high - low)
    else:
        span = values.max() - values.min()
        result = (values - values.min()) / span if span else np.zeros_like(values)
    return 1.0 - result if photometric == "MONOCHROME1" else result


def _corpus_params():
    files = sorted(Path(p) for p in get_testdata_files() if Path(p).is_file())
    params = [pytest.param(f, id=str(f.relative_to(PYDICOM_FILES))) for f in files]
    for folder in ("cxr_dicom", "dicom_samples", "dicom_mr_mosaic"):
        for f in sorted((SHARED_MEDICAL / folder).rglob("*")) if (SHARED_MEDICAL / folder).is_dir() else []:
            if f.is_file() and f.suffix not in (".txt", ".json"):
                params.append(pytest.param(f, id=f"shared/{f.relative_to(SHARED_MEDICAL)}"))
    return params


@pytest.mark.parametrize("path", _corpus_params())
def test_decodes_like_pydicom_or_raises_the_documented_error(path):
    expected = expected_error(path)
    if expected is not None:
        with pytest.raises(expected) as caught:
            read_dicom(path)
        # the message names the file (by its key: DICOM names may be UIDs) ...
        assert caught.value.path == str(path) and file_key(path) in str(caught.value)
        assert path.name not in str(caught.value)
        assert caught.value.reason  # ... and the reason
        assert path.name in DOCS or path.name.startswith(("DICOMDIR", "IM0")), f"{path.name} not in docs"
        return
    image = read_dicom(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pydicom_reference(path)
    assert image.array.dtype == np.float32
    assert image.array.shape == reference.shape
    assert image.array.min() >= 0.0 and image.array.max() <= 1.0
    # float32 vs pydicom's float64: equal to rounding, lossy JPEG included (same libjpeg IDCT)
    np.testing.assert_allclose(image.array, reference, atol=1e-5)


CT = get_testdata_file("CT_small.dcm")


def test_window_none_gives_modality_values_in_hounsfield_units():
    ds = pydicom.dcmread(CT)
    expected = apply_modality_lut(ds.pixel_array, ds)
    image = read_dicom(CT, window=None)
    np.testing.assert_array_equal(image.array, expected.astype(np.float32))
    assert image.meta["value_range"] is None and image.meta["window_source"] is None


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_explicit_and_header_windows_match_pydicom_windowing(tmp_path, function):
    ds = pydicom.dcmread(CT)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 40, 400, function
    path = tmp_path / "ct_window.dcm"
    ds.save_as(path)
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    low, high = apply_voi_lut(np.array([-1e12, 1e12]), ds)
    reference = (apply_voi_lut(values, ds) - low) / (high - low)
    np.testing.assert_allclose(read_dicom(path).array, reference, atol=1e-5)
    if function == "LINEAR":  # an explicit (center, width) is the same LINEAR window
        np.testing.assert_allclose(read_dicom(CT, window=(40, 400)).array, reference, atol=1e-5)


def test_voi_lut_sequence_is_applied(tmp_path):
    ds = pydicom.dcmread(CT)
    item = Dataset()
    item.LUTDescriptor = [256, -1024, 16]  # 256 entries starting at -1024 HU, 16-bit output
    # a gamma curve, so a LUT that was ignored could not pass for a linear window
    curve = (np.linspace(0, 1, 256) ** 0.5 * 65535).astype("<u2")
    item.add_new(0x00283006, "OW", curve.tobytes())  # LUT Data
    ds.VOILUTSequence = Sequence([item])
    path = tmp_path / "ct_voilut.dcm"
    ds.save_as(path)
    reread = pydicom.dcmread(path)
    values = apply_modality_lut(reread.pixel_array, reread)
    reference = apply_voi_lut(values, reread, prefer_lut=True) / 65535.0
    image = read_dicom(path)
    assert image.meta["window_source"] == "voi_lut"
    np.testing.assert_allclose(image.array, reference, atol=1e-6)


def test_percentile_window_clips_to_the_image_percentiles():
    ds = pydicom.dcmread(CT)
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    low, high = np.percentile(values, (2, 98))
    reference = np.clip((values - low) / (high - low), 0, 1)
    image = read_dicom(CT, window="percentile", percentiles=(2, 98))
    np.testing.assert_allclose(image.array, reference, atol=1e-5)


def test_monochrome1_is_inverted_so_zero_is_black():
    path = get_testdata_file("dicomdirtests/77654033/CR1/6154")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    values = apply_modality_lut(ds.pixel_array, ds)
    image = read_dicom(path, window="percentile", percentiles=(0, 100))
    # the largest stored value is displayed white in MONOCHROME2 and black in MONOCHROME1
    assert image.array.flat[np.argmax(values)] == pytest.approx(0.0)
    assert image.array.flat[np.argmin(values)] == pytest.approx(1.0)


def test_single_frame_of_a_multiframe_file_equals_that_frame_of_the_whole():
    path = get_testdata_file("examples_ybr_color.dcm")  # 30-frame JPEG YBR_FULL_422 ultrasound
    whole = read_dicom(path)
    assert whole.array.shape == (30, 240, 320, 3)
    np.testing.assert_array_equal(read_dicom(path, frame=7).array, whole.array[7])
    dose = get_testdata_file("rtdose.dcm")  # 15 grey frames: one shared min-max, so compare raw
    np.testing.assert_array_equal(read_dicom(dose, frame=4, window=None).array, read_dicom(dose, window=None).array[4])
    with pytest.raises(IndexError):
        read_dicom(path, frame=30)
    # "first": frame 0 of a multi-frame file, the only image of a single-frame one
    np.testing.assert_array_equal(read_dicom(path, frame="first").array, whole.array[0])
    np.testing.assert_array_equal(read_dicom(CT, frame="first").array, read_dicom(CT).array)


def test_sample_helper_gives_channel_first_tensors_that_pass_the_sample_contract():
    grey = load_dicom_sample(CT)
    assert tuple(grey["image"].shape) == (1, 128, 128)
    np.testing.assert_array_equal(grey["image"][0].numpy(), read_dicom(CT).array)
    colour_path = get_testdata_file("examples_ybr_color.dcm")
    colour = load_dicom_sample(colour_path)  # multi-frame: first frame
    assert tuple(colour["image"].shape) == (3, 240, 320) and colour["meta"]["frame"] == 0
    np.testing.assert_array_equal(colour["image"].numpy(), read_dicom(colour_path, frame=0).array.transpose(2, 0, 1))
    check_sample(grey)
    check_sample(colour)


def test_truncated_copies_raise_truncated_errors_naming_the_file(tmp_path):
    data = Path(CT).read_bytes()
    for cut in (600, 5000, len(data) - 1000):
        path = tmp_path / f"cut_{cut}.dcm"
        path.write_bytes(data[:cut])
        with pytest.raises(TruncatedDicomError, match=f"file {file_key(path)}: ") as caught:
            read_dicom(path)
        assert caught.value.path == str(path) and "cut_" not in str(caught.value)


def test_garbage_directories_and_missing_files_raise_read_errors(tmp_path):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(NotDicomError, match=file_key(junk)):
        read_dicom(junk)
    with pytest.raises(DicomReadError, match="directory"):
        read_dicom(tmp_path)
    with pytest.raises(DicomReadError, match="cannot open"):
        read_dicom(tmp_path / "absent.dcm")


def test_non_image_objects_are_unsupported_files_for_on_error_skip():
    with pytest.raises(NotAnImageError) as caught:
        read_dicom(get_testdata_file("liver_1frame.dcm"))
    assert isinstance(caught.value, UnsupportedFileError) and isinstance(caught.value, ReadError)
    assert "SEG" in caught.value.reason
    with pytest.raises(NotAnImageError, match="RT Plan Storage"):
        read_dicom(get_testdata_file("rtplan.dcm"))


def test_meta_is_json_able_and_describes_the_image():
    meta = read_dicom(CT).meta
    check_sample({"text": "x", "meta": meta})
    ds = pydicom.dcmread(CT)
    assert meta["modality"] == "CT" and meta["rows"] == ds.Rows and meta["columns"] == ds.Columns
    assert meta["spacing"] == [float(v) for v in ds.PixelSpacing]
    assert meta["orientation"] == [float(v) for v in ds.ImageOrientationPatient]
    assert meta["transfer_syntax_uid"] == ds.file_meta.TransferSyntaxUID
    assert meta["bits_stored"] == ds.BitsStored and meta["frames"] == 1
    assert meta["window_source"] == "min_max"  # CT_small carries no window


def test_a_syntax_without_decoder_raises_unsupported_syntax(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    from facetvlp.domains.medical.dicom_read import UnsupportedSyntaxError

    ds = pydicom.dcmread(CT)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML  # video: no still-image decoder in pydicom
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(100)])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "mpeg2.dcm"
    ds.save_as(path)
    with pytest.raises(UnsupportedSyntaxError, match="MPEG2"):
        read_dicom(path)
