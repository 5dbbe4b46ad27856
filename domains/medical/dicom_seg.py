"""DICOM-SEG in and out with highdicom: masks on their source images, predictions back to PACS.

:func:`read_dicom_seg` turns a DICOM Segmentation and its source images (one radiograph, or a
CT/MR series folder) into a label map on the source grid: 0 background, k = segment k.

:func:`write_dicom_seg` turns a predicted label map into a DICOM Segmentation that references
its source images (ReferencedSeriesSequence and one source SOP instance per frame), so a viewer
overlays it on the right slices. A prediction made at model size is first brought back to the
source grid with nearest-neighbour resampling (:func:`to_source_grid`), undoing the letterbox of
:func:`.transforms.fit_square` when asked. Sources with only ``ImagerPixelSpacing`` (CR/DX
projection radiographs) are supported: the SEG sits on the source's own pixel grid, so it
carries no PixelMeasures of its own and claims no patient-plane spacing the source does not.

Patient data: a DICOM-SEG must carry the patient and study modules of its source (that is how
PACS files it under the right patient); highdicom copies them from the source. That file is the
clinical output, written where the user asks; nothing identifying goes to logs, metadata or the
file name. highdicom warns about odd person names by quoting them, so its warnings are silenced
while writing.

Series order: slices are sorted by their position along the slice normal, the order
:func:`.dicom_series.read_dicom_series` gives, so ``labels[k]`` lies on ``volume.array[k]``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import highdicom as hd
import numpy as np
import pydicom
import torch
import torch.nn.functional as F
from pydicom.sr.codedict import codes

from .dicom_read import DicomReadError, NotDicomError, read_header

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


class DicomSegError(DicomReadError):
    """A DICOM-SEG that cannot be read onto its source images, or a prediction that cannot be
    written onto them."""


@dataclass(frozen=True)
class SegLabels:
    labels: np.ndarray  # int64 label map on the source grid: (H, W) or (D, H, W)
    segment_names: list[str]  # segment k is labels == k (k = 1 ..)


def source_datasets(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> list[pydicom.Dataset]:
    """Headers of one image file, every DICOM image in a series folder, or listed files; a
    series comes back sorted along its slice normal."""
    if isinstance(sources, (str, os.PathLike)):
        path = Path(sources)
        paths = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    else:
        paths = [Path(p) for p in sources]
    headers = []
    for path in paths:
        try:
            header = read_header(path, stop_before_pixels=True)
        except NotDicomError:
            if len(paths) == 1:
                raise
            continue  # a README or DICOMDIR beside the slices
        if "Rows" in header:
            headers.append(header)
    if not headers:
        raise DicomSegError(str(sources), "no DICOM images among the sources")
    if len(headers) > 1:
        headers = _sorted_along_normal(headers, str(sources))
    return headers


def _sorted_along_normal(headers: list[pydicom.Dataset], where: str) -> list[pydicom.Dataset]:
    if any("ImagePositionPatient" not in h or "ImageOrientationPatient" not in h for h in headers):
        raise DicomSegError(where, "several source images without ImagePositionPatient/Orientation "
                            "cannot be ordered as a series")
    orientation = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    depth = [float(np.dot([float(v) for v in h.ImagePositionPatient], normal)) for h in headers]
    return [headers[i] for i in np.argsort(depth, kind="stable")]


def read_dicom_seg(seg_path: str | os.PathLike, sources) -> SegLabels:
    """The segments of ``seg_path`` as one label map on the source grid (see module docstring).

    Source images the SEG has no frame for are empty. Frames are matched to sources by the
    referenced SOP instance; the SEG must share the sources' rows and columns.
    """
    seg_path = os.fspath(seg_path)
    header = read_header(seg_path)
    if header.get("SOPClassUID") != SEG_SOP_CLASS:
        raise DicomSegError(seg_path, f"not a DICOM Segmentation (SOP class {header.get('SOPClassUID')})")
    headers = source_datasets(sources)
    try:
        seg = hd.seg.Segmentation.from_dataset(header, copy=False)
        uids = [h.SOPInstanceUID for h in headers]
        # dcmqi and others often leave SpatialLocationsPreserved out; frames are matched by the
        # referenced instance, which is what we rely on
        labels = seg.get_pixels_by_source_instance(
            uids, combine_segments=True, relabel=False, ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True, dtype=np.int64)
        names = [seg.get_segment_description(n).segment_label for n in seg.segment_numbers]
    except (ValueError, KeyError, AttributeError, RuntimeError) as exc:
        raise DicomSegError(seg_path, f"highdicom cannot read it onto its sources ({exc})") from exc
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    if labels.shape[1:] != (rows, columns):
        raise DicomSegError(seg_path, f"SEG frames are {labels.shape[1:]}, sources {rows}x{columns}")
    return SegLabels(labels[0] if len(headers) == 1 else labels, names)


def segment_name_key(name: str) -> str:
    """How a SegmentLabel is matched to a class name: case, spaces and underscores ignored."""
    return "".join(name.lower().replace("_", " ").split())


def to_source_grid(labels: np.ndarray | torch.Tensor, rows: int, columns: int,
                   letterboxed: bool = False) -> np.ndarray:
    """A (..., h, w) label map on the model grid -> (..., rows, columns), nearest neighbour.

    ``letterboxed``: the model input was the source fitted into a square by
    :func:`.transforms.fit_square` (longest side to h, padded bottom/right); the padding is cut
    off first so the image content maps onto the whole source.
    """
    labels = torch.as_tensor(np.asarray(labels))
    height, width = labels.shape[-2:]
    if letterboxed:
        scale = height / max(rows, columns)
        labels = labels[..., :max(1, round(rows * scale)), :max(1, round(columns * scale))]
    if labels.shape[-2:] == (rows, columns):
        return labels.numpy().astype(np.int64)
    lead = labels.shape[:-2]
    flat = labels.reshape(1, -1, *labels.shape[-2:]).float()
    out = F.interpolate(flat, size=(rows, columns), mode="nearest-exact")
    return out.reshape(*lead, rows, columns).round().long().numpy()


def _property_type(name: str) -> hd.sr.CodedConcept:
    """SNOMED CT code for a class name when pydicom's dictionary has one ("lung" -> Lung),
    else the generic "Anatomical Structure"."""
    keyword = "".join(part.capitalize() for part in name.replace("-", " ").replace("_", " ").split())
    try:
        return getattr(codes.SCT, keyword)
    except AttributeError:
        return codes.SCT.AnatomicalStructure


def write_dicom_seg(labels: np.ndarray | torch.Tensor, sources, path: str | os.PathLike,
                    segment_names: Sequence[str], *, letterboxed: bool = False,
                    series_number: int = 300, series_description: str = "facetvlp segmentation",
                    algorithm_name: str = "facetvlp", algorithm_version: str | None = None) -> str:
    """Write a predicted label map as a DICOM Segmentation referencing ``sources``.

    Args:
        labels: int label map, 0 = background and k = ``segment_names[k - 1]``; (h, w) for one
            image, (D, h, w) for a series of D slices (sorted along the normal). Any h, w: a
            map not on the source grid is resampled to it (see :func:`to_source_grid`).
        sources: the source image file, its series folder, or the list of slice files.
        letterboxed: the prediction is on a :func:`.transforms.fit_square` grid.
    """
    from facetvlp import __version__

    headers = source_datasets(sources)
    rows, columns = int(headers[0].Rows), int(headers[0].Columns)
    labels = np.asarray(labels)
    expected_ndim = 2 if len(headers) == 1 else 3
    if labels.ndim != expected_ndim or (labels.ndim == 3 and labels.shape[0] != len(headers)):
        raise ValueError(f"labels {labels.shape} do not fit {len(headers)} source image(s): "
                         f"expected {'(h, w)' if expected_ndim == 2 else f'({len(headers)}, h, w)'}")
    labels = to_source_grid(labels, rows, columns, letterboxed)
    if labels.min() < 0 or labels.max() > len(segment_names):
        raise ValueError(f"labels hold {labels.min()}..{labels.max()}; expected 0..{len(segment_names)}")
    version = algorithm_version or __version__
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name, version=version, family=codes.cid7162.ArtificialIntelligence)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k, segment_label=name,
            segmented_property_category=codes.cid7150.AnatomicalStructure,
            segmented_property_type=_property_type(name),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm)
        for k, name in enumerate(segment_names, start=1)
    ]
    dtype = np.uint8 if len(segment_names) < 256 else np.uint16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # highdicom's person-name warnings quote the value
        seg = hd.seg.Segmentation(
            source_images=headers, pixel_array=labels.astype(dtype),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(),
            series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="facetvlp", manufacturer_model_name=algorithm_name,
            software_versions=version, device_serial_number="0",
            series_description=series_description, omit_empty_frames=False,
            # an empty value means the default repertoire; highdicom wants None for that
            specific_character_set=headers[0].get("SpecificCharacterSet") or None)
        seg.save_as(os.fspath(path))
    return os.fspath(path)
