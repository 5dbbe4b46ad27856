"""PHI: identifiers planted in copies of real DICOM files never reach read_dicom/series metadata,
inspect output (API and CLI), the preprocessed cache, error messages or logs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from facetvlp.core.inspect import inspect_file
from facetvlp.domains.medical.cache import CachedLoadDicomd
from facetvlp.domains.medical.dicom_read import DicomReadError, load_dicom_sample, read_dicom
from facetvlp.domains.medical.dicom_series import read_dicom_series
from facetvlp.domains.medical.phi import IDENTIFYING_KEYWORDS, pseudonymous_key

REPO = Path(__file__).resolve().parents[2]

PLANTED = {
    "PatientName": "Quixotic^Zebulon",
    "PatientID": "PID-73519864",
    "PatientBirthDate": "19230405",
    "AccessionNumber": "ACC98127634",
    "InstitutionName": "Planted Memorial Infirmary",
    "ReferringPhysicianName": "Vexillo^Octavia",
}
SAFE_KEYS = {
    "modality", "sop_class", "photometric_interpretation", "transfer_syntax_uid", "frames", "rows",
    "columns", "samples_per_pixel", "bits_allocated", "bits_stored", "pixel_representation", "spacing",
    "orientation", "view_position", "study_key", "series_key", "frame", "window_source", "value_range",
}


def secrets_of(ds) -> list[str]:
    values = list(PLANTED.values()) + ["Quixotic", "Zebulon", "73519864", "98127634", "Vexillo"]
    return values + [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]


def plant(source: str, target, series_uid=None, position=None):
    ds = pydicom.dcmread(source)
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.424242"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    if position is not None:
        ds.ImagePositionPatient = position
    ds.save_as(target)
    return ds


def shared_cxr_dicoms() -> list[str]:
    """The real SIIM (JPEG) and NIH chest X-ray DICOMs when ../shared/data is here, else none."""
    folder = Path(os.environ.get("FACETVLP_SHARED_DATA", REPO.parent / "shared" / "data")) / "medical" / "cxr_dicom"
    return sorted(str(p) for p in folder.glob("*.dcm")) if folder.is_dir() else []


@pytest.fixture
def planted(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETVLP_PHI_SALT", "phi-test-salt")
    sources = [get_testdata_file("CT_small.dcm"), get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")]
    sources += shared_cxr_dicoms()
    files = []
    for index, source in enumerate(sources):
        target = tmp_path / f"scan_{index}.dcm"
        files.append((target, plant(source, target)))
    return files


def assert_clean(text: str, ds) -> None:
    for secret in secrets_of(ds):
        assert secret not in text, f"identifier {secret!r} leaked"


def test_read_dicom_and_sample_meta_hold_only_safe_keys(planted, caplog):
    caplog.set_level(logging.DEBUG)
    for path, ds in planted:
        meta = read_dicom(path).meta
        assert set(meta) <= SAFE_KEYS
        assert_clean(json.dumps(meta), ds)
        assert_clean(json.dumps(load_dicom_sample(path)["meta"]), ds)
        assert meta["study_key"] == pseudonymous_key(ds.StudyInstanceUID, "study")
    assert_clean(caplog.text, planted[0][1])


def test_inspect_api_and_cli_report_identifiers_by_keyword_only(planted, capsys):
    from facetvlp.cli import main

    for path, ds in planted:
        summary = inspect_file(path)
        assert {"PatientName", "PatientID", "AccessionNumber", "InstitutionName"} <= set(summary["identifiers_present"])
        assert summary["decodable"] is True
        assert_clean(json.dumps(summary), ds)
        assert main(["inspect", str(path)]) == 0
        out = capsys.readouterr()
        assert json.loads(out.out)["modality"] == ds.Modality or ds.get("Modality") is None
        assert_clean(out.out + out.err, ds)


def test_cache_folder_bytes_hold_no_identifier(planted, tmp_path):
    cache_dir = tmp_path / "cache"
    load = CachedLoadDicomd(cache_dir=cache_dir, size=64)
    for path, _ in planted:
        load({"image": str(path)})
        load({"image": str(path)})
    blob = b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())
    names = " ".join(p.name for p in cache_dir.rglob("*"))
    for _, ds in planted:
        for secret in secrets_of(ds):
            assert secret.encode() not in blob and secret not in names
    assert "scan_" not in names


def test_series_meta_and_error_messages_hold_no_identifier(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETVLP_PHI_SALT", "phi-test-salt")
    folder = tmp_path / "series"
    folder.mkdir()
    uid = generate_uid()
    datasets = [plant(get_testdata_file("CT_small.dcm"), folder / f"{k}.dcm", uid, [0.0, 0.0, 2.0 * k]) for k in range(3)]
    meta = read_dicom_series(folder).meta
    assert_clean(json.dumps(meta), datasets[0])
    plant(get_testdata_file("CT_small.dcm"), folder / "other.dcm", None, [0.0, 0.0, 6.0])
    with pytest.raises(DicomReadError) as caught:
        read_dicom_series(folder)
    assert_clean(str(caught.value), datasets[0])
    truncated = tmp_path / "cut.dcm"
    truncated.write_bytes((folder / "0.dcm").read_bytes()[:-500])
    with pytest.raises(DicomReadError) as caught:
        read_dicom(truncated)
    assert_clean(str(caught.value), datasets[0])


def test_pydicom_log_records_quoting_values_are_redacted(caplog):
    caplog.set_level(logging.WARNING)
    logging.getLogger("pydicom").warning("Invalid value for VR PN: 'Quixotic^Zebulon'")
    assert "Quixotic" not in caplog.text and "<redacted>" in caplog.text


def test_keys_are_stable_salted_and_one_way(monkeypatch):
    uid = "1.2.826.0.1.3680043.8.498.424242"
    monkeypatch.setenv("FACETVLP_PHI_SALT", "a")
    first = pseudonymous_key(uid, "study")
    assert first == pseudonymous_key(uid, "study") != pseudonymous_key(uid, "series")
    assert len(first) == 16 and uid not in first and "424242" not in first
    monkeypatch.setenv("FACETVLP_PHI_SALT", "b")
    assert pseudonymous_key(uid, "study") != first
    assert pseudonymous_key(None, "study") is None


def test_the_planted_attributes_are_on_the_identifying_list():
    assert set(PLANTED) <= set(IDENTIFYING_KEYWORDS)
    assert {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"} <= set(IDENTIFYING_KEYWORDS)
