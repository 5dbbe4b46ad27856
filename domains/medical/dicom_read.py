"""Read one DICOM file into a float32 array plus privacy-safe metadata.

Output range (documented in docs/medical_dicom.md):

* ``window="header"`` (default), an explicit ``(center, width)``, or ``"percentile"``: values in
  [0, 1]; 0 is the dark end of the display (MONOCHROME1 is inverted so that 0 is always black).
* ``window=None``: the modality values themselves (Hounsfield units for CT, stored values scaled by
  Rescale Slope/Intercept otherwise; colour images in their stored 0..2**bits-1 range), not inverted.

Enhanced multi-frame objects keep the rescale and the window in their functional groups, per frame
(see frame_rescale, frame_window); Pixel Padding never sets a min..max or percentile window.

Shapes: grey (H, W); colour (H, W, 3); multi-frame (F, H, W) or (F, H, W, 3); ``frame=i`` decodes
only frame ``i``; ``frame="first"`` always gives one 2D image.

Why this is faster than a general loader: the header is parsed lazily and only the attributes we
use are ever converted; no full metadata dictionary or affine is built; each transfer syntax goes
straight to the installed decoder that measured fastest for it (libjpeg-turbo through Pillow for
baseline JPEG, OpenJPEG for JPEG 2000, GDCM for JPEG-LS ...); baseline-JPEG YCbCr becomes RGB
inside libjpeg-turbo; rescale and windowing run in place on the float32 array we return anyway.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import generate_frames, get_frame
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, convert_color_space, get_decoder
from pydicom.uid import UID, JPEGBaseline8Bit

from facetvlp.core.errors import ReadError, UnsupportedFileError

from .phi import install_pydicom_log_redaction, pseudonymous_key

install_pydicom_log_redaction()


class DicomReadError(ReadError):
    """A DICOM file could not become an image; the message names the file by its key (DICOM file
    and folder names are often UIDs or patient names) and says the reason; ``.path`` holds it."""

    phi_paths = True


class NotDicomError(DicomReadError):
    """The bytes are not a DICOM data set (no 'DICM' marker and nothing parseable)."""


class TruncatedDicomError(DicomReadError):
    """The file ends early: before its Pixel Data, or inside it."""


class MalformedDicomError(DicomReadError):
    """A DICOM data set whose image attributes are missing or invalid (e.g. no Bits Allocated)."""


class NotAnImageError(DicomReadError, UnsupportedFileError):
    """A valid DICOM object that is not an image: RT plan, SR, waveform, DICOMDIR, SEG ..."""


class UnsupportedSyntaxError(DicomReadError):
    """A transfer syntax or pixel format that no installed decoder turns into an image."""


class UndecodablePixelDataError(DicomReadError):
    """Every installed decoder refused the compressed pixel data (corrupt or non-conformant)."""


@dataclass(frozen=True)
class DicomImage:
    array: np.ndarray  # float32, see the module docstring for shape and range
    meta: dict[str, Any]  # JSON-able, identifier-free (see safe_meta)


# The installed plugin that decoded each syntax fastest on the real test corpus
# (benchmarks/dicom_read.py); pydicom's own order is tried if the preferred one fails.
_PREFERRED_PLUGIN = {
    "1.2.840.10008.1.2.4.50": "pillow",  # JPEG baseline: libjpeg-turbo
    "1.2.840.10008.1.2.4.51": "pylibjpeg",  # JPEG extended (12-bit): libjpeg
    "1.2.840.10008.1.2.4.57": "gdcm",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "gdcm",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "gdcm",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "gdcm",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg",  # JPEG 2000 lossless: OpenJPEG
    "1.2.840.10008.1.2.4.91": "pylibjpeg",  # JPEG 2000: OpenJPEG
    "1.2.840.10008.1.2.5": "pylibjpeg",  # RLE lossless
}

# SOP classes whose pixel data is not an image of the patient.
_NOT_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "a DICOM-SEG label map (needs its source images; not read alone)",
}

_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_YBR_FULL = ("YBR_FULL", "YBR_FULL_422")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Attributes a readable image data set must hold; used to tell "not DICOM" from "DICOM without meta".
_PLAUSIBLE_KEYWORDS = ("SOPClassUID", "Modality", "Rows", "StudyInstanceUID", "SpecificCharacterSet")


def _quiet(fn):
    """Silence pydicom's warnings for the whole call: values are converted lazily on access, and
    its warnings about invalid values quote them (a malformed PatientName would reach the logs)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return wrapper


@_quiet
def read_header(path: str | os.PathLike, *, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """Parse a DICOM file (lazily: values are converted only when read) or raise a DicomReadError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DicomReadError(path, "is a directory; read a series folder with read_dicom_series")
    try:
        try:
            return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except InvalidDicomError:
            # No 128-byte preamble + "DICM": legal for old files, so parse anyway and judge.
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels)
    except OSError as exc:
        raise DicomReadError(path, f"cannot open: {exc.strerror or exc}") from exc
    except Exception as exc:  # pydicom raises many types on garbage input
        raise NotDicomError(path, f"not a DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(keyword in ds for keyword in _PLAUSIBLE_KEYWORDS):
        raise NotDicomError(
            path, "no 'DICM' marker at byte 128 and the bytes do not parse as a DICOM data set"
        )
    return ds


@_quiet
def safe_meta(ds: pydicom.Dataset) -> dict[str, Any]:
    """The allow-listed, JSON-able header fields; nothing that identifies a patient or a visit.

    Invalid values (a DS that is not a number ...) become None: a summary never fails on them.
    """
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    sop_class = ds.get("SOPClassUID")
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    orientation = ds.get("ImageOrientationPatient")
    return {
        "modality": _text(ds.get("Modality")),
        "sop_class": UID(sop_class).name if sop_class else None,
        "photometric_interpretation": _text(ds.get("PhotometricInterpretation")),
        "transfer_syntax_uid": str(ts) if ts else None,
        "frames": _lenient_int(ds.get("NumberOfFrames"), default=1),
        "rows": _lenient_int(ds.get("Rows")),
        "columns": _lenient_int(ds.get("Columns")),
        "samples_per_pixel": _lenient_int(ds.get("SamplesPerPixel"), default=1),
        "bits_allocated": _lenient_int(ds.get("BitsAllocated")),
        "bits_stored": _lenient_int(ds.get("BitsStored")),
        "pixel_representation": _lenient_int(ds.get("PixelRepresentation")),
        # PixelSpacing is (row spacing, column spacing) in mm
        "spacing": _floats(spacing),
        "orientation": _floats(orientation),
        "view_position": _text(ds.get("ViewPosition")),
        "study_key": pseudonymous_key(ds.get("StudyInstanceUID"), "study"),
        "series_key": pseudonymous_key(ds.get("SeriesInstanceUID"), "series"),
    }


@_quiet
def read_dicom(
    path: str | os.PathLike,
    window: None | str | tuple[float, float] = "header",
    percentiles: tuple[float, float] = (0.5, 99.5),
    frame: int | str | None = None,
) -> DicomImage:
    """Decode one DICOM image; see the module docstring for shapes and the output range.

    ``frame``: None decodes every frame, ``i`` only frame ``i``, ``"first"`` frame 0 of a
    multi-frame file and the image of a single-frame one (always 2D grey or (H, W, 3) colour).

    ``window``: ``"header"`` uses the VOI LUT or Window Center/Width of the file (its first value)
    and falls back to the image's own min..max; ``(center, width)`` applies that linear window in
    modality units; ``"percentile"`` clips to ``percentiles`` of the image; ``None`` returns the
    modality values unwindowed.
    """
    path = os.fspath(path)
    if not (window is None or window in ("header", "percentile") or _is_pair(window)):
        raise ValueError(f"window must be None, 'header', 'percentile' or (center, width): {window!r}")
    ds = read_header(path)
    _check_is_image(ds, path)
    frames = _frame_count(ds, path)
    if frame == "first":
        frame = 0 if frames > 1 else None
    if frame is not None and not 0 <= frame < frames:
        raise IndexError(f"frame {frame} out of range (the file has {frames} frames)")

    pixels, photometric = _decode(ds, path, frame)
    meta = safe_meta(ds)
    if photometric in _MONOCHROME:
        decoded = range(frames) if frame is None else range(frame, frame + 1)
        array, meta["window_source"] = _grey_to_float(pixels, ds, window, percentiles, decoded)
        if photometric == "MONOCHROME1" and window is not None:
            np.subtract(1.0, array, out=array)  # MONOCHROME1: low values are white
    else:
        array, meta["window_source"] = _colour_to_float(pixels, ds, photometric, window, percentiles)
    meta["frame"] = frame
    meta["value_range"] = None if window is None else [0.0, 1.0]
    return DicomImage(array, meta)


@_quiet
def load_dicom_sample(path: str | os.PathLike, **read_kwargs) -> dict[str, Any]:
    """A sample dict for datasets: ``image`` (C, H, W) float32 tensor (C=1 grey, 3 colour) + meta.

    A multi-frame file gives its first frame unless ``frame=`` says otherwise.
    """
    import torch

    read_kwargs.setdefault("frame", "first")
    image = read_dicom(path, **read_kwargs)
    array = image.array
    tensor = torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))
    return {"image": tensor, "meta": image.meta}


def _frame_count(ds: pydicom.Dataset, path: str) -> int:
    try:
        return _int(ds.get("NumberOfFrames"), default=1)
    except (ValueError, TypeError) as exc:
        raise MalformedDicomError(path, f"Number of Frames is not an integer ({exc})") from exc


def _check_is_image(ds: pydicom.Dataset, path: str) -> None:
    file_meta = getattr(ds, "file_meta", None) or {}
    sop_class = str(ds.get("SOPClassUID") or file_meta.get("MediaStorageSOPClassUID") or "")
    if sop_class in _NOT_IMAGE_SOP_CLASSES:
        raise NotAnImageError(path, _NOT_IMAGE_SOP_CLASSES[sop_class])
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        what = f"'{UID(sop_class).name}' object" if sop_class else "DICOM object of no stated SOP class"
        if "Rows" in ds or what.endswith("Image Storage' object"):
            raise TruncatedDicomError(
                path, f"an image ({what}) whose file ends before its Pixel Data (truncated, or pixels stripped)"
            )
        if len(ds) == 0:
            raise TruncatedDicomError(path, "the file ends right after its File Meta Information")
        raise NotAnImageError(path, f"a {what} with no pixel data")
    missing = [k for k in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel") if k not in ds]
    if "PixelData" in ds and missing:
        raise MalformedDicomError(path, f"Pixel Data without the Image Pixel module: missing {missing}")
    if "TransferSyntaxUID" not in file_meta:
        raise MalformedDicomError(path, "no Transfer Syntax UID in the File Meta Information")


def _decode(ds: pydicom.Dataset, path: str, frame: int | None) -> tuple[np.ndarray, str]:
    """Decoded pixels (raw colour space) and the photometric interpretation they are now in."""
    ts = UID(ds.file_meta.TransferSyntaxUID)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as exc:
        raise UnsupportedSyntaxError(path, f"no pixel data decoder for transfer syntax {ts} ({ts.name})") from exc
    if not decoder.is_available:
        raise UnsupportedSyntaxError(
            path, f"{ts.name}: no decoder plugin installed ({'; '.join(decoder.missing_dependencies)})"
        )
    if ts == JPEGBaseline8Bit and ds.get("PhotometricInterpretation") in _YBR_FULL:
        rgb = _decode_ybr_jpeg_as_rgb(ds, frame)
        if rgb is not None:
            return rgb, "RGB"
    preferred = _PREFERRED_PLUGIN.get(ts, "")
    plugins = [preferred, ""] if preferred in decoder.available_plugins else [""]
    for plugin in plugins:
        try:
            pixels, info = decoder.as_array(ds, index=frame, raw=True, decoding_plugin=plugin)
            return pixels, str(info["photometric_interpretation"])
        except Exception as exc:  # retry with every plugin, then classify the last failure
            failure = exc
    text = str(failure)
    if "less than expected" in text or "too short" in text:
        raise TruncatedDicomError(path, f"Pixel Data is shorter than the image needs ({text.split(' - ')[0]})") from failure
    if isinstance(failure, (AttributeError, ValueError, TypeError)) and "decode" not in text.lower():
        raise MalformedDicomError(path, f"invalid image attributes ({text})") from failure
    reasons = " | ".join(line.strip() for line in text.splitlines()[1:]) or text
    raise UndecodablePixelDataError(path, f"{ts.name}: every installed decoder refused the data: {reasons}") from failure


def _decode_ybr_jpeg_as_rgb(ds: pydicom.Dataset, frame: int | None) -> np.ndarray | None:
    """Baseline JPEG stored as YCbCr, converted to RGB inside libjpeg-turbo (Pillow's default).

    pydicom keeps such frames in YCbCr and converts them in numpy, which costs several times the
    decode itself on multi-frame ultrasound. None when Pillow cannot do it (the caller falls back).
    """
    frames = _frame_count(ds, ds.filename or "<dataset>")
    try:
        if frame is None:
            encoded = list(generate_frames(ds.PixelData, number_of_frames=frames))
        else:
            encoded = [get_frame(ds.PixelData, frame, number_of_frames=frames)]
        out = np.empty((len(encoded), int(ds.Rows), int(ds.Columns), 3), dtype=np.uint8)
        for index, data in enumerate(encoded):
            with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
                # an Adobe marker means the stream says its own colour space: leave it to pydicom
                if image.mode != "RGB" or "adobe_transform" in image.info or image.size != out.shape[2:0:-1]:
                    return None
                image.load()
                out[index] = np.asarray(image)
    except Exception:
        return None
    return out[0] if frame is not None or frames == 1 else out


def _grey_to_float(pixels, ds, window, percentiles, frames) -> tuple[np.ndarray, str | None]:
    """Modality values (and a window) for grey ``pixels`` holding the frames ``frames`` (a range).

    Enhanced multi-frame objects keep Rescale Slope/Intercept and Window Center/Width in their
    functional groups, possibly different for each frame; a frame axis is present when
    ``len(frames) > 1``.
    """
    if window == "header" and "VOILUTSequence" in ds:
        # a LUT is indexed by integer modality values, so it runs before the float conversion
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        shown = apply_voi_lut(apply_modality_lut(pixels, ds), ds, prefer_lut=True)
        return scale_to_unit(shown.astype(np.float32), 0.0, 2.0**bits - 1), "voi_lut"
    padding = padding_mask(pixels, ds)  # on stored values, before any rescale
    if "ModalityLUTSequence" in ds:
        array = apply_modality_lut(pixels, ds).astype(np.float32, copy=False)
    else:
        array = pixels.astype(np.float32)  # the one copy; everything below is in place
        slopes, intercepts = zip(*(frame_rescale(ds, index) for index in frames))
        _rescale_in_place(array, np.array(slopes), np.array(intercepts))
    if window is None:
        return array, None
    if window == "header":
        windows = [frame_window(ds, index) for index in frames]
        if any(w is None for w in windows):
            low, high = display_range(array, padding, None)
            return scale_to_unit(array, low, high), "min_max"
        if len(set(windows)) == 1:
            return apply_window(array, *windows[0]), "header"
        for plane, frame_window_ in zip(array, windows):  # one window per frame
            apply_window(plane, *frame_window_)
        return array, "header"
    if window == "percentile":
        low, high = display_range(array, padding, percentiles)
        return scale_to_unit(array, low, high), "percentile"
    return apply_window(array, float(window[0]), float(window[1]), "LINEAR"), "explicit"


def _rescale_in_place(array: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> None:
    """value = stored * slope + intercept, with one (slope, intercept) per frame of ``array``."""
    if np.ptp(slopes) == 0 and np.ptp(intercepts) == 0:  # the common case: scalars, no broadcast
        if slopes[0] != 1.0:
            array *= float(slopes[0])
        if intercepts[0] != 0.0:
            array += float(intercepts[0])
        return
    per_frame = (-1,) + (1,) * (array.ndim - 1)
    array *= slopes.astype(np.float32).reshape(per_frame)
    array += intercepts.astype(np.float32).reshape(per_frame)


def display_range(array: np.ndarray, padding: np.ndarray | None, percentiles) -> tuple[float, float]:
    """min..max (or the given percentiles) of the values that are not Pixel Padding."""
    values = array if padding is None else array[~padding]
    if values.size == 0:  # an image of nothing but padding
        return 0.0, 0.0
    if percentiles is None:
        return float(values.min()), float(values.max())
    low, high = np.percentile(values, percentiles)
    return float(low), float(high)


def functional_group(ds: pydicom.Dataset, keyword: str, frame: int) -> pydicom.Dataset | None:
    """The first item of functional group macro ``keyword`` for frame ``frame`` (0-based) of an
    enhanced multi-frame object: the Per-Frame group wins over the Shared one (PS3.3 C.7.6.16);
    None when neither has it (and for every classic single-frame object)."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        sequence = ds.get(groups)
        if sequence is not None and index < len(sequence):
            macro = sequence[index].get(keyword)
            if macro:
                return macro[0]
    return None


def frame_rescale(ds: pydicom.Dataset, frame: int = 0) -> tuple[float, float]:
    """(Rescale Slope, Rescale Intercept) of one frame: from the Pixel Value Transformation
    functional group of an enhanced object, else from the top level, else (1, 0)."""
    source = functional_group(ds, "PixelValueTransformationSequence", frame) or ds
    slope, intercept = source.get("RescaleSlope"), source.get("RescaleIntercept")
    return (1.0 if slope is None else float(slope)), (0.0 if intercept is None else float(intercept))


def frame_window(ds: pydicom.Dataset, frame: int = 0) -> tuple[float, float, str] | None:
    """The header window of one frame: the Frame VOI LUT functional group of an enhanced object,
    else the top-level Window Center/Width (see header_window)."""
    return header_window(functional_group(ds, "FrameVOILUTSequence", frame) or ds)


def padding_range(ds: pydicom.Dataset) -> tuple[int, int] | None:
    """The stored values that are Pixel Padding (PS3.3 C.7.5.1.1.2): Pixel Padding Value alone, or
    the inclusive range up to Pixel Padding Range Limit; None when the header declares none."""
    value, limit = ds.get("PixelPaddingValue"), ds.get("PixelPaddingRangeLimit")
    try:
        value = None if value is None else int(value)
        limit = value if limit is None else int(limit)
    except (TypeError, ValueError):  # an undecodable value (bytes of an ambiguous VR): ignore it
        return None
    return None if value is None else (min(value, limit), max(value, limit))


def padding_mask(stored: np.ndarray, ds: pydicom.Dataset) -> np.ndarray | None:
    """True where a stored value is padding (air outside the reconstruction circle ...), or None."""
    bounds = padding_range(ds)
    if bounds is None:
        return None
    mask = (stored >= bounds[0]) & (stored <= bounds[1])
    return mask if mask.any() else None


def _colour_to_float(pixels, ds, photometric, window, percentiles) -> tuple[np.ndarray, str | None]:
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        array, top = rgb.astype(np.float32), 2.0**bits - 1
    elif photometric == "RGB":
        array, top = pixels.astype(np.float32), 2.0 ** int(ds.BitsStored) - 1
    elif photometric in _YBR_FULL:
        # ITU-R BT.601 full range (PS3.3 C.7.6.3.1.2); baseline JPEG never gets here (see _decode)
        top = 2.0 ** int(ds.BitsStored) - 1
        array = convert_color_space(pixels, photometric, "RGB").astype(np.float32)
    else:
        raise UnsupportedSyntaxError(
            ds.filename or "<dataset>", f"photometric interpretation {photometric!r} is not converted to RGB"
        )
    if window is None:
        return array, None
    if window == "header":
        return scale_to_unit(array, 0.0, top), "bit_depth"
    if window == "percentile":
        low, high = np.percentile(array, percentiles)
        return scale_to_unit(array, float(low), float(high)), "percentile"
    return apply_window(array, float(window[0]), float(window[1]), "LINEAR"), "explicit"


def header_window(ds) -> tuple[float, float, str] | None:
    """The first (Window Center, Window Width, VOI LUT Function) of a header, or None."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    center = float(center[0] if isinstance(center, pydicom.multival.MultiValue) else center)
    width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
    function = str(ds.get("VOILUTFunction", "LINEAR")).upper() or "LINEAR"
    if width <= (1.0 if function == "LINEAR" else 0.0):
        return None  # an invalid window is treated as no window
    return center, width, function


def apply_window(array: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 window to [0, 1], in place."""
    if function == "SIGMOID":
        array -= center
        array *= -4.0 / width
        np.exp(array, out=array)
        array += 1.0
        return np.reciprocal(array, out=array)
    if function == "LINEAR_EXACT":
        return scale_to_unit(array, center - width / 2, center + width / 2)
    if width <= 1.0:
        raise ValueError(f"a LINEAR window needs width > 1, got {width}")
    # LINEAR: x <= c - 0.5 - (w-1)/2 -> 0 and x > c - 0.5 + (w-1)/2 -> 1
    return scale_to_unit(array, center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2)


def scale_to_unit(array: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map [low, high] to [0, 1] and clip, in place; a flat image becomes all zeros."""
    if high <= low:
        array.fill(0.0)
        return array
    array -= low
    array *= 1.0 / (high - low)
    return np.clip(array, 0.0, 1.0, out=array)


def _is_pair(window) -> bool:
    return isinstance(window, (tuple, list)) and len(window) == 2


def _text(value) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    return int(value)


def _lenient_int(value, default: int | None = None) -> int | None:
    try:
        return _int(value, default)
    except (ValueError, TypeError):
        return None


def _floats(values) -> list[float] | None:
    try:
        return [float(v) for v in values] if values else None
    except (ValueError, TypeError):
        return None
