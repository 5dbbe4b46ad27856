"""Predicted boxes for a DICOM image as JSON that references the image and names no patient.

A box prediction goes back to the clinic as a small JSON document next to the study: which
instance it is about (Study / Series / SOP Instance UID and SOP Class, the references a viewer or
a DICOM SR converter needs), the image grid (rows, columns, pixel spacing) and the boxes in the
source image's pixel coordinates (column, row; xyxy, half-open) with their text and score. The
UIDs are there because the document must point at its image; names, IDs, dates and every other
attribute of the patient and study are not copied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pydicom
import torch
from pydicom.errors import InvalidDicomError

from .dicom_read import DicomReadError

FORMAT = "facetvlp-dicom-boxes-1"


def read_references(path: str | os.PathLike) -> dict:
    """The instance references and image grid of a DICOM file (header only)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError) as exc:
        raise DicomReadError(path, f"cannot read the DICOM header ({type(exc).__name__})") from None
    missing = [k for k in ("SOPInstanceUID", "SOPClassUID", "Rows", "Columns") if k not in ds]
    if missing:
        raise DicomReadError(path, f"no {', '.join(missing)}: boxes could not reference the image")
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    return {
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")) or None,
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")) or None,
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "sop_class_uid": str(ds.SOPClassUID),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "pixel_spacing_mm": [float(v) for v in spacing] if spacing else None,
    }


def write_dicom_boxes(source: str | os.PathLike, boxes: torch.Tensor, scores: torch.Tensor,
                      labels: torch.Tensor, texts: Sequence[str], out_path: str | os.PathLike,
                      input_scale: float = 1.0) -> Path:
    """Write boxes predicted on the model input (xyxy pixels; the input is the source scaled by
    `input_scale` and padded at the bottom/right, as CXR datasets make it) as source-pixel JSON."""
    refs = read_references(source)
    source_boxes = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4) / float(input_scale)
    limits = torch.tensor([refs["columns"], refs["rows"], refs["columns"], refs["rows"]], dtype=torch.float64)
    source_boxes = source_boxes.clamp(min=torch.zeros(4, dtype=torch.float64), max=limits)
    document = {
        "format": FORMAT,
        "references": refs,
        "box_format": "xyxy, source pixels (column, row), half-open",
        "boxes": [
            {"text": texts[int(label)], "score": round(float(score), 6),
             "xyxy": [round(float(v), 2) for v in box]}
            for box, score, label in zip(source_boxes, torch.as_tensor(scores), torch.as_tensor(labels))
        ],
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(document, indent=2))
    return out_path
