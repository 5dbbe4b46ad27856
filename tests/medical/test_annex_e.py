"""The PHI reporting list is DICOM PS3.15 Annex E (from dicom-anonymizer's copy of the table):
attributes issue 10 found missing, nested sequences, private tags and repeating groups, on pydicom's
real CT_small."""

from __future__ import annotations

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from facetvlp.domains.medical.annex_e import is_annex_e_tag
from facetvlp.domains.medical.phi import IDENTIFYING_KEYWORDS, identifying_attributes_present


def test_the_list_is_annex_e_not_a_subset():
    # attributes Annex E removes or replaces (PS3.15 Table E.1-1) that the hand list lacked
    for keyword in ("StudyDescription", "SeriesDescription", "ImageComments", "ProtocolName", "PatientAge",
                    "PatientSex", "PatientWeight", "PatientSize", "RequestedProcedureID", "PerformedProcedureStepID",
                    "ReferencedSOPInstanceUID", "DeviceSerialNumber", "PatientName", "StudyInstanceUID"):
        assert keyword in IDENTIFYING_KEYWORDS, keyword
    assert len(IDENTIFYING_KEYWORDS) > 400
    # what Annex E keeps is not reported (image geometry, pixel description)
    for keyword in ("Rows", "PixelSpacing", "Modality", "SOPClassUID", "BitsStored"):
        assert keyword not in IDENTIFYING_KEYWORDS, keyword


def test_nested_private_and_repeating_group_attributes_are_reported_by_path_never_value():
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    request = Dataset()
    request.RequestedProcedureID = "RP-7731-SECRET"
    request.ScheduledProcedureStepID = "SPS-SECRET"
    ds.RequestAttributesSequence = Sequence([request])
    ds.StudyDescription = "CHEST SECRET-STUDY"
    ds.add_new(0x60024000, "LT", "overlay comment SECRET")  # Overlay Comments, group 6002
    ds.add_new(0x00291010, "LO", "vendor SECRET")  # a private attribute
    found = identifying_attributes_present(ds)
    assert "RequestAttributesSequence" in found
    assert "RequestAttributesSequence>RequestedProcedureID" in found
    assert "RequestAttributesSequence>ScheduledProcedureStepID" in found
    assert "StudyDescription" in found and "PatientName" in found
    assert "(6002,4000)" in found or "OverlayComments" in found
    assert any(item.startswith("private attributes (") for item in found)
    assert "MediaStorageSOPInstanceUID" in found  # file meta
    assert not any("SECRET" in item or "CompressedSamples" in item for item in found)
    assert "Rows" not in found and "PixelData" not in found


def test_repeating_groups_match_by_mask():
    assert is_annex_e_tag(0x60004000) and is_annex_e_tag(0x601E4000)  # Overlay Comments, any 60xx
    assert is_annex_e_tag(0x50020000) or is_annex_e_tag(0x50003000)  # Curve Data, any 50xx
    assert not is_annex_e_tag(0x00280010)  # Rows
