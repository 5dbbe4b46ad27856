"""DICOM-SEG read and written with highdicom, checked against pydicom / highdicom directly:
a real dcmqi SEG on its real 3-slice CT series, predictions written onto that series and onto a
single-frame CR with only ImagerPixelSpacing (made from the real SIIM radiograph)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from facetvlp.domains.medical.dicom_seg import (
    DicomSegError,
    read_dicom_seg,
    source_datasets,
    to_source_grid,
    write_dicom_seg,
)
from facetvlp.domains.medical.volume_datasets import DicomSegDataset

SERIES = "medical/dcmqi_ct_3slice_seg/data/segmentations/ct-3slice"
LIVER_SEG = "medical/dicom_samples/liver_1frame.dcm"
SIIM_CR = "medical/cxr_dicom/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def _series_uids_by_depth(folder: Path) -> list[str]:
    """Independent order: ImagePositionPatient z (the series is axial, normal = +z)."""
    slices = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    assert all([float(v) for v in s.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0] for s in slices)
    return [s.SOPInstanceUID for s in sorted(slices, key=lambda s: float(s.ImagePositionPatient[2]))]


def test_real_dcmqi_seg_lands_on_the_slice_it_references(shared_data):
    folder = shared_data / SERIES
    labels = read_dicom_seg(shared_data / LIVER_SEG, folder)
    raw = pydicom.dcmread(shared_data / LIVER_SEG)
    # the file keeps one frame: its pixels and the source instance its derivation names
    frame = raw.pixel_array.astype(bool)
    referenced = (raw.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
                  .SourceImageSequence[0].ReferencedSOPInstanceUID)
    order = _series_uids_by_depth(folder)
    k = order.index(referenced)
    assert labels.segment_names == [raw.SegmentSequence[0].SegmentLabel]
    assert labels.labels.shape == (3, 512, 512)
    np.testing.assert_array_equal(labels.labels[k], frame.astype(np.int64))
    assert labels.labels[[i for i in range(3) if i != k]].sum() == 0
    assert frame.sum() > 10000  # a real liver cross-section, not an empty frame


def test_dicom_seg_dataset_pairs_the_seg_with_its_series(shared_data):
    dataset = DicomSegDataset([dict(image=str(shared_data / SERIES), seg=str(shared_data / LIVER_SEG))],
                              seg_classes=["background", "liver"], intensity_range=None)
    sample = dataset[0]
    raw = pydicom.dcmread(shared_data / LIVER_SEG)
    order = _series_uids_by_depth(shared_data / SERIES)
    referenced = (raw.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
                  .SourceImageSequence[0].ReferencedSOPInstanceUID)
    k = order.index(referenced)
    assert sample["image"].shape == (1, 3, 512, 512) and sample["seg"].shape == (3, 512, 512)
    np.testing.assert_array_equal(sample["seg"][k].numpy(), raw.pixel_array.astype(np.int64))
    # the image slice k is that same CT instance, in HU (pydicom's modality LUT as reference)
    source = next(pydicom.dcmread(p) for p in (shared_data / SERIES).iterdir()
                  if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == referenced)
    hu = pydicom.pixels.apply_modality_lut(source.pixel_array, source)
    np.testing.assert_allclose(sample["image"][0, k].numpy(), hu, atol=1e-3)
    # liver HU on the real slice: soft tissue, not air or bone
    assert 0 < float(sample["image"][0, k][sample["seg"][k] == 1].mean()) < 150
    # safe meta: salted keys only, no UID anywhere
    text = repr(sample["meta"])
    assert referenced not in text and source.StudyInstanceUID not in text and "JANCT" not in text


def test_prediction_at_model_size_is_written_on_the_ct_series_and_read_back(shared_data, tmp_path):
    folder = shared_data / SERIES
    order = _series_uids_by_depth(folder)
    rng = np.random.default_rng(0)
    prediction = np.zeros((3, 128, 128), dtype=np.int64)
    prediction[:, 30:90, 20:70] = 1
    prediction[1, 95:120, 60:100] = 2
    prediction[2] = np.where(rng.random((128, 128)) < 0.01, 2, prediction[2])  # scattered pixels
    out = write_dicom_seg(prediction, folder, tmp_path / "pred.dcm", ["liver", "spine"])

    seg = hd.seg.segread(out)
    assert {uid for _, _, uid in seg.get_source_image_uids()} == set(order)
    ref = pydicom.dcmread(out).ReferencedSeriesSequence[0]
    assert {i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence} == set(order)
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == ["liver", "spine"]
    # on the 512 source grid: each model pixel becomes a 4x4 block (nearest, exact factor)
    expected = np.repeat(np.repeat(prediction, 4, axis=1), 4, axis=2)
    got = seg.get_pixels_by_source_instance(order, combine_segments=True, relabel=False)
    np.testing.assert_array_equal(got, expected)
    # the patient module is copied from the source (that is what a SEG must carry)
    source = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
    assert pydicom.dcmread(out).PatientID == source.PatientID


def _cr_with_imager_spacing_only(shared_data: Path, tmp_path: Path, columns: int) -> Path:
    """The real SIIM radiograph as a CR Image Storage object: spacing only as ImagerPixelSpacing
    (as CR/DX detectors record it), cropped to `columns` to make it non-square, with a
    recognisable patient name to hunt for in logs."""
    ds = pydicom.dcmread(shared_data / SIIM_CR)
    pixels = ds.pixel_array[:, :columns].copy()
    ds.ImagerPixelSpacing = ds.PixelSpacing
    del ds.PixelSpacing
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.PatientName = "Sentinel"  # one component: highdicom warns about it, quoting it
    ds.set_pixel_data(pixels, ds.PhotometricInterpretation, int(ds.BitsStored))  # uncompressed
    path = tmp_path / "cr.dcm"
    ds.save_as(path)
    return path


def test_letterboxed_prediction_on_a_cr_with_only_imager_pixel_spacing(shared_data, tmp_path, caplog):
    source = _cr_with_imager_spacing_only(shared_data, tmp_path, columns=768)
    rows, columns = 1024, 768
    # model grid: fit_square to 256 -> content 256 x 192, padded on the right
    prediction = np.zeros((256, 256), dtype=np.int64)
    prediction[40:200, 20:90] = 1
    prediction[40:200, 110:180] = 1
    prediction[:, 192:] = 1  # padding: must not reach the source
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        out = write_dicom_seg(prediction, source, tmp_path / "lungs.dcm", ["lung"], letterboxed=True)
    said = " ".join(str(w.message) for w in caught) + caplog.text
    assert "Sentinel" not in said
    seg = hd.seg.segread(out)
    src = pydicom.dcmread(source, stop_before_pixels=True)
    assert [uid for _, _, uid in seg.get_source_image_uids()] == [src.SOPInstanceUID]
    got = seg.get_pixels_by_source_instance([src.SOPInstanceUID], combine_segments=True)[0]
    expected = np.repeat(np.repeat(prediction[:, :192], 4, axis=0), 4, axis=1)
    assert got.shape == (rows, columns)
    np.testing.assert_array_equal(got, expected)
    written = pydicom.dcmread(out)
    assert "PixelSpacing" not in str(written.SharedFunctionalGroupsSequence[0])
    assert written.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "39607008"  # SCT lung
    # and our reader agrees with highdicom
    np.testing.assert_array_equal(read_dicom_seg(out, source).labels, expected)


def test_to_source_grid_undoes_fit_square():
    import torch

    from facetvlp.domains.medical.transforms import fit_square

    labels = torch.zeros(300, 200)
    labels[50:250, 20:90] = 1
    fitted, _ = fit_square(labels[None], 150, mode="nearest")
    back = to_source_grid(fitted[0].long(), 300, 200, letterboxed=True)
    # 2x down then up: the region boundaries move by at most one source pixel
    assert back.shape == (300, 200)
    assert (back != labels.numpy()).sum() <= 2 * (200 + 140)


def test_wrong_inputs_are_clear_errors(shared_data, tmp_path):
    folder = shared_data / SERIES
    with pytest.raises(DicomSegError, match="not a DICOM Segmentation"):
        read_dicom_seg(next(folder.iterdir()), folder)
    with pytest.raises(ValueError, match="do not fit 3 source image"):
        write_dicom_seg(np.zeros((2, 64, 64), dtype=np.int64), folder, tmp_path / "x.dcm", ["liver"])
    with pytest.raises(ValueError, match="expected 0..1"):
        write_dicom_seg(np.full((3, 64, 64), 2), folder, tmp_path / "x.dcm", ["liver"])
    assert len(source_datasets(folder)) == 3


def test_dicom_seg_2d_dataset_reads_a_seg_on_a_radiograph(shared_data, tmp_path):
    from facetvlp.domains.medical.mask_datasets import DicomSeg2DDataset

    source = _cr_with_imager_spacing_only(shared_data, tmp_path, columns=768)
    truth = np.zeros((1024, 768), dtype=np.int64)
    truth[200:800, 100:350] = 1
    truth[200:800, 420:700] = 1
    seg_path = write_dicom_seg(truth, source, tmp_path / "lungs.dcm", ["Lung"])
    dataset = DicomSeg2DDataset([dict(image=str(source), seg=seg_path)], seg_classes=["background", "lung"],
                                image_size=1024, mean=[0.0], std=[1.0])
    sample = dataset[0]
    assert sample["image"].shape == (1, 1024, 1024) and sample["seg"].shape == (1024, 1024)
    np.testing.assert_array_equal(sample["seg"][:, :768].numpy(), truth)
    assert (sample["seg"][:, 768:] == -1).all()  # letterbox padding is ignored
    # pixels as pydicom decodes them, scaled to [0, 1] by the header window (MONOCHROME2 here)
    raw = pydicom.dcmread(source).pixel_array.astype(np.float64)
    image = sample["image"][0, :, :768].numpy()
    assert np.corrcoef(image.ravel(), raw.ravel())[0, 1] > 0.99
    assert "Sentinel" not in repr(sample["meta"]) and sample["meta"]["group"] != pydicom.dcmread(source).PatientID
