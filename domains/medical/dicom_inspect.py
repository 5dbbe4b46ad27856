"""`facetvlp inspect scan.dcm`: a privacy-safe summary of a DICOM file.

DICOM files often have no suffix (PACS exports name them by UID), so besides ".dcm"/".dicom" a
sniffer claims any file with "DICM" at byte 128, or whose first bytes parse as a DICOM data set.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np
import pydicom

from facetvlp.core.inspect import register_inspector

from .dicom_read import DicomReadError, read_dicom, read_header, safe_meta
from .phi import identifying_attributes_present

_SNIFF_BYTES = 4096


def looks_like_dicom(path: str) -> bool:
    """True for Part 10 files ("DICM" at byte 128) and for preamble-less data sets."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return False
    if head[128:132] == b"DICM":
        return True
    try:
        with warnings.catch_warnings():  # elements are parsed (and warned about) while iterated
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(head), force=True, stop_before_pixels=True)
            # A forced parse of arbitrary bytes yields junk tags; real data sets start with group 0008.
            return any(element.tag.group == 0x0008 and element.keyword for element in ds)
    except Exception:
        return False


@register_inspector(suffixes=(".dcm", ".dicom"), sniff=looks_like_dicom)
def inspect_dicom(path: str) -> dict[str, Any]:
    """Header summary plus pixel statistics when the file is a decodable image.

    Identifiers are reported by keyword only ("identifiers_present"), never by value.
    """
    path = os.fspath(path)
    header = read_header(path, stop_before_pixels=True)
    summary: dict[str, Any] = {"kind": "dicom", **safe_meta(header)}
    summary["identifiers_present"] = identifying_attributes_present(header)
    try:
        image = read_dicom(path, frame="first")
    except DicomReadError as exc:
        summary["decodable"] = False
        summary["error"] = f"{type(exc).__name__}: {exc.reason}"
        return summary
    array = image.array
    summary.update(
        decodable=True,
        window_source=image.meta["window_source"],
        decoded_shape=list(array.shape),
        value_range=image.meta["value_range"],
        pixel_stats={
            "min": float(array.min()),
            "max": float(array.max()),
            "mean": float(array.mean()),
            "std": float(array.std()),
            "nonfinite": int(np.count_nonzero(~np.isfinite(array))),
        },
    )
    return summary
