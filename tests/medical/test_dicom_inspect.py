"""`facetvlp inspect` for DICOM: by suffix, by sniffing suffix-less and preamble-less files."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import facetvlp.domains.medical  # noqa: F401  (registers the inspector)
from facetvlp.core.errors import UnsupportedFileError
from facetvlp.core.inspect import inspect_file
from facetvlp.core.privacy import file_key
from facetvlp.domains.medical.dicom_inspect import looks_like_dicom
from facetvlp.domains.medical.dicom_read import NotDicomError, read_dicom

CT = get_testdata_file("CT_small.dcm")


def test_summary_of_a_ct_by_suffix_matches_the_file():
    summary = inspect_file(CT)
    ds = pydicom.dcmread(CT)
    array = read_dicom(CT).array
    assert summary["kind"] == "dicom" and summary["decodable"] is True
    assert (summary["rows"], summary["columns"], summary["modality"]) == (ds.Rows, ds.Columns, "CT")
    assert summary["decoded_shape"] == [128, 128]
    assert summary["pixel_stats"]["mean"] == pytest.approx(float(array.mean()), rel=1e-6)
    assert summary["pixel_stats"]["nonfinite"] == 0
    assert "PatientName" in summary["identifiers_present"]


def test_suffixless_pacs_export_is_sniffed(tmp_path):
    target = tmp_path / "IM0001"  # PACS exports and DICOMDIR file sets have no suffix
    shutil.copy(CT, target)
    assert looks_like_dicom(str(target))
    assert inspect_file(target)["decoded_shape"] == [128, 128]


def test_preamble_less_data_set_is_sniffed(tmp_path):
    ds = pydicom.dcmread(CT)
    target = tmp_path / "raw_dataset"
    ds.preamble = None
    del ds.file_meta  # a bare implicit-VR data set as old modalities wrote them
    ds.save_as(target, implicit_vr=True, little_endian=True, enforce_file_format=False)
    head = target.read_bytes()[:132]
    assert head[128:132] != b"DICM"
    assert looks_like_dicom(str(target))
    summary = inspect_file(target)
    assert summary["modality"] == "CT"


def test_non_images_and_non_dicom_files(tmp_path):
    plan = inspect_file(get_testdata_file("rtplan.dcm"))
    assert plan["decodable"] is False and plan["error"].startswith("NotAnImageError")
    notes = tmp_path / "notes"
    notes.write_text("FINDINGS: no acute disease.\n" * 20)
    assert not looks_like_dicom(str(notes))
    with pytest.raises(UnsupportedFileError):
        inspect_file(notes)
    garbage = tmp_path / "broken.dcm"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NotDicomError, match=f"file {file_key(garbage)}: ") as caught:
        inspect_file(garbage)
    assert caught.value.path == str(garbage) and "broken" not in str(caught.value)


def test_multiframe_summary_decodes_one_frame():
    summary = inspect_file(get_testdata_file("examples_ybr_color.dcm"))
    assert summary["frames"] == 30 and summary["decoded_shape"] == [240, 320, 3]
    assert np.isfinite(summary["pixel_stats"]["std"])
