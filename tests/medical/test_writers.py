"""Box JSON for a real DICOM radiograph: it points at the instance, maps model-input boxes back to
source pixels, and carries none of the identifiers planted in the file."""

from __future__ import annotations

import json

import pydicom
import pytest
import torch

from facetvlp.domains.medical.writers import write_dicom_boxes
from facetvlp.domains.medical.datasets import CXRFolderDataset
from facetvlp.domains.medical.dicom_read import DicomReadError

PLANTED = {"PatientName": "DOE^JOHN", "PatientID": "MRN12345", "PatientBirthDate": "19700101",
           "AccessionNumber": "ACC998877", "InstitutionName": "St Elsewhere Clinic",
           "ReferringPhysicianName": "HOUSE^GREGORY"}


@pytest.fixture
def planted_dicom(shared_data, tmp_path):
    source = next((shared_data / "medical" / "cxr_dicom").glob("*.dcm"), None)
    if source is None:
        pytest.skip("no CXR DICOM in shared data")
    ds = pydicom.dcmread(source)
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    folder = tmp_path / "images" / "finding"
    folder.mkdir(parents=True)
    path = folder / "scan.dcm"
    ds.save_as(path)
    return path, ds


def test_boxes_go_back_to_source_pixels_with_references_and_no_identifiers(planted_dicom, tmp_path):
    path, ds = planted_dicom
    item = CXRFolderDataset(tmp_path / "images", image_size=224)[0]
    scale = item["meta"]["input_scale"]
    assert item["meta"]["source_shape"] == [ds.Rows, ds.Columns]
    assert scale == pytest.approx(224 / max(ds.Rows, ds.Columns))
    source_box = [0.25 * ds.Columns, 0.3 * ds.Rows, 0.6 * ds.Columns, 0.8 * ds.Rows]
    model_box = torch.tensor([source_box]) * scale  # where the dataset would put it
    out = write_dicom_boxes(path, model_box, torch.tensor([0.87]), torch.tensor([1]),
                            ["pneumonia", "pneumothorax"], tmp_path / "out" / "boxes.json", input_scale=scale)
    document = json.loads(out.read_text())
    assert document["references"]["sop_instance_uid"] == ds.SOPInstanceUID
    assert document["references"]["series_instance_uid"] == ds.SeriesInstanceUID
    assert document["references"]["rows"] == ds.Rows
    (box,) = document["boxes"]
    assert box["text"] == "pneumothorax" and box["score"] == pytest.approx(0.87)
    assert box["xyxy"] == pytest.approx(source_box, abs=0.02)
    text = out.read_text()
    for value in PLANTED.values():
        for variant in (value, value.replace("^", " "), value.split("^")[0]):
            assert variant not in text


def test_boxes_are_clamped_to_the_image_and_a_non_dicom_is_a_typed_error(planted_dicom, tmp_path):
    path, ds = planted_dicom
    out = write_dicom_boxes(path, torch.tensor([[-5.0, -5.0, 1e6, 1e6]]), torch.tensor([0.5]),
                            torch.tensor([0]), ["x"], tmp_path / "b.json")
    assert json.loads(out.read_text())["boxes"][0]["xyxy"] == [0.0, 0.0, float(ds.Columns), float(ds.Rows)]
    bogus = tmp_path / "not.dcm"
    bogus.write_bytes(b"hello")
    with pytest.raises(DicomReadError):
        write_dicom_boxes(bogus, torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), [], tmp_path / "c.json")
