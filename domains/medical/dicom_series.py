"""A CT/MR series folder -> one 3D volume, sorted by position along the slice normal.

Slices are ordered by ImagePositionPatient projected on the normal (row direction x column
direction), not by InstanceNumber, which scanners number in either direction. A folder that mixes
series, orientations or slice sizes, whose slice gaps are uneven (missing slices), or whose slice
corners do not lie on one line raises an error naming the folder and what is wrong instead of
returning a silently distorted volume. A gantry-tilted CT (every slice shifted in-plane by the
same step) gets a sheared affine that puts each slice where the scanner did.

`meta["affine"]` follows MONAI's PydicomReader (swap_ij=True, affine_lps_to_ras=True): it maps
the voxel index (i = column, j = row, k = slice) to RAS millimetres. Our array is indexed
``array[k, j, i]`` (depth, height, width), i.e. ``array.transpose(2, 1, 0)`` is MONAI's layout.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facetvlp.core.privacy import file_key

from .dicom_read import (
    DicomReadError,
    MalformedDicomError,
    NotAnImageError,
    NotDicomError,
    UnsupportedSyntaxError,
    display_range,
    apply_window,
    frame_rescale,
    header_window,
    padding_range,
    read_dicom,
    read_header,
    safe_meta,
    scale_to_unit,
)


class SeriesError(DicomReadError):
    """A folder that does not hold exactly one complete, regular series."""


class MixedSeriesError(SeriesError):
    """Several SeriesInstanceUIDs in one folder."""


class InconsistentSeriesError(SeriesError):
    """Slices disagree on orientation, size or pixel spacing, or two share a position."""


class MissingSliceError(SeriesError):
    """Uneven gaps between slice positions: slices are missing."""


@dataclass(frozen=True)
class DicomVolume:
    array: np.ndarray  # float32 (slices, rows, columns)
    meta: dict[str, Any]


# Relative tolerance on slice gaps: scanners write positions with ~0.01 mm rounding.
_GAP_TOLERANCE = 0.05
_ORIENTATION_TOLERANCE = 1e-4
# In-plane shift per slice, relative to the spacing, below which slices count as untilted (0.57°).
_TILT_TOLERANCE = 0.01


def read_dicom_series(
    folder: str | os.PathLike,
    window: None | str | tuple[float, float] = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> DicomVolume:
    """Read every DICOM image in ``folder`` (not recursive) as one volume.

    ``window=None`` (default) keeps modality values (HU for CT); ``"header"`` uses the first
    slice's window, ``(center, width)`` or ``"percentile"`` map the whole volume to [0, 1] at once
    so that every slice shares one intensity scale. Non-DICOM files and non-image objects (a
    DICOMDIR, a README) in the folder are ignored and counted in ``meta["ignored_files"]``.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DicomReadError(folder, "not a directory")
    headers, ignored = [], 0
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        try:
            header = read_header(path, stop_before_pixels=True)
        except NotDicomError:
            ignored += 1
            continue
        if "Rows" not in header or "ImagePositionPatient" not in header:
            ignored += 1  # a DICOMDIR, an SR, a localiser without geometry ...
            continue
        headers.append((str(path), header))
    if not headers:
        raise DicomReadError(folder, "no DICOM images with ImagePositionPatient in this folder")
    if any(is_siemens_mosaic(h) for _, h in headers):
        if len(headers) > 1:
            raise SeriesError(folder, f"{len(headers)} Siemens mosaics (a time series of volumes); read each file with read_siemens_mosaic")
        return read_siemens_mosaic(headers[0][0], window=window, percentiles=percentiles)

    _check_one_series(folder, headers)
    row_dir, col_dir, normal = _directions(folder, headers)
    positions = np.array([[float(v) for v in h.ImagePositionPatient] for _, h in headers])
    depth = positions @ normal
    order = np.argsort(depth, kind="stable")
    headers = [headers[i] for i in order]
    depth, positions = depth[order], positions[order]
    slice_spacing = _slice_spacing(folder, headers, depth)
    slice_step = _slice_step(folder, positions, normal, slice_spacing)

    slices, padding = [], []
    for path, header in headers:
        if int(header.get("NumberOfFrames", 1) or 1) > 1:
            raise SeriesError(folder, f"slice file {file_key(path)} is multi-frame; enhanced multi-frame "
                                      "volumes are not supported")
        try:
            slices.append(read_dicom(path, window=None).array)
        except NotAnImageError as exc:
            raise SeriesError(folder, f"slice file {file_key(path)}: {exc.reason}") from exc
        padding.append(modality_padding_mask(slices[-1], header))
    volume = np.stack(slices)
    first = headers[0][1]
    if all(mask is None for mask in padding):
        padding = None
    else:
        padding = np.stack([np.zeros(volume.shape[1:], bool) if mask is None else mask for mask in padding])
    volume, window_source = window_volume(volume, first, window, percentiles, padding)
    if first.get("PhotometricInterpretation") == "MONOCHROME1" and window is not None:
        np.subtract(1.0, volume, out=volume)  # as read_dicom: 0 is black on display

    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    meta = safe_meta(first)
    meta.update(
        slices=len(headers),
        # (slice, row, column) spacing in mm, the order of the array axes
        spacing=[slice_spacing, row_spacing, col_spacing],
        orientation=[*row_dir.tolist(), *col_dir.tolist()],
        origin=positions[0].tolist(),
        affine=ras_affine(row_dir, col_dir, slice_step, row_spacing, col_spacing, positions[0]),
        gantry_tilt_deg=_tilt_degrees(slice_step, normal),
        window_source=window_source,
        value_range=None if window is None else [0.0, 1.0],
        ignored_files=ignored,
    )
    return DicomVolume(volume, meta)


def _check_one_series(folder: str, headers) -> None:
    series = {str(h.get("SeriesInstanceUID", "")) for _, h in headers}
    if len(series) > 1:
        # counts only: the UIDs themselves are identifiers
        raise MixedSeriesError(folder, f"{len(series)} different SeriesInstanceUIDs; put each series in its own folder")
    sizes = {(int(h.Rows), int(h.Columns)) for _, h in headers}
    if len(sizes) > 1:
        raise InconsistentSeriesError(folder, f"slices of different sizes (rows, columns): {sorted(sizes)}")
    if any("PixelSpacing" not in h for _, h in headers):
        raise InconsistentSeriesError(folder, "a slice has no PixelSpacing, so the volume has no geometry")
    spacings = np.array([[float(v) for v in h.PixelSpacing] for _, h in headers])
    if np.ptp(spacings, axis=0).max() > 1e-4:
        raise InconsistentSeriesError(folder, "slices with different PixelSpacing")


def _directions(folder: str, headers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    orientations = np.array([[float(v) for v in h.get("ImageOrientationPatient", [])] for _, h in headers])
    if orientations.shape[1:] != (6,):
        raise InconsistentSeriesError(folder, "a slice has no valid ImageOrientationPatient")
    if np.abs(orientations - orientations[0]).max() > _ORIENTATION_TOLERANCE:
        raise InconsistentSeriesError(folder, "slices with different ImageOrientationPatient (not one stack)")
    row_dir, col_dir = orientations[0, :3], orientations[0, 3:]
    normal = np.cross(row_dir, col_dir)
    return row_dir, col_dir, normal / np.linalg.norm(normal)


def _slice_spacing(folder: str, headers, depth: np.ndarray) -> float:
    if len(depth) == 1:
        first = headers[0][1]
        return float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
    gaps = np.diff(depth)
    if gaps.min() <= 1e-3:
        index = int(np.argmin(gaps))
        raise InconsistentSeriesError(
            folder, f"two slices at the same position ({depth[index]:.3f} mm along the normal)"
        )
    spacing = float(np.median(gaps))
    uneven = np.flatnonzero(np.abs(gaps - spacing) > _GAP_TOLERANCE * spacing)
    if uneven.size:
        worst = int(uneven[np.argmax(np.abs(gaps[uneven] - spacing))])
        raise MissingSliceError(
            folder,
            f"uneven slice gaps: {gaps[worst]:.3f} mm between {depth[worst]:.3f} and {depth[worst + 1]:.3f} mm "
            f"where the series spacing is {spacing:.3f} mm ({uneven.size} uneven gap(s); missing slices?)",
        )
    return float(np.mean(gaps))


def modality_padding_mask(values: np.ndarray, ds) -> np.ndarray | None:
    """Where a slice of modality values (read_dicom(window=None)) holds Pixel Padding.

    The padding bounds are stored values; they go through the slice's own rescale in float32,
    the arithmetic read_dicom applied to the pixels, so padding pixels compare equal exactly.
    """
    bounds = padding_range(ds)
    if bounds is None or "ModalityLUTSequence" in ds:
        return None
    slope, intercept = (np.float32(v) for v in frame_rescale(ds))
    low, high = sorted(np.float32(b) * slope + intercept for b in bounds)
    mask = (values >= low) & (values <= high)
    return mask if mask.any() else None


def _slice_step(folder: str, positions: np.ndarray, normal: np.ndarray, spacing: float) -> np.ndarray:
    """The LPS vector from one slice's corner to the next: the affine's k column.

    It is the normal times the spacing, unless every slice is shifted in-plane by the same step,
    as a gantry-tilted CT is: then the volume is sheared and the step keeps each voxel where the
    scanner put it (PS3.3 C.7.6.2.1.1 holds for every slice). Corners that do not lie on one
    evenly stepped line (a step differs from the mean by more than the gap tolerance) cannot be
    one affine volume and raise an error.
    """
    if len(positions) == 1:
        return normal * spacing
    steps = np.diff(positions, axis=0)
    mean_step = (positions[-1] - positions[0]) / (len(positions) - 1)
    deviation = np.linalg.norm(steps - mean_step, axis=1)
    if deviation.max() > _GAP_TOLERANCE * spacing:
        worst = int(np.argmax(deviation))
        raise InconsistentSeriesError(
            folder,
            f"slice corners do not lie on one line: the step after sorted slice {worst} is "
            f"{deviation[worst]:.3f} mm off the mean step of {np.linalg.norm(mean_step):.3f} mm",
        )
    in_plane = mean_step - (mean_step @ normal) * normal
    if np.linalg.norm(in_plane) <= _TILT_TOLERANCE * spacing:
        return normal * spacing  # scanner rounding, not a tilt
    return mean_step


def _tilt_degrees(step: np.ndarray, normal: np.ndarray) -> float:
    cosine = abs(step @ normal) / np.linalg.norm(step)
    return round(math.degrees(math.acos(min(1.0, cosine))), 3)


def window_volume(volume, first, window, percentiles, padding=None):
    """Window a whole volume at once; ``padding`` (bool, like volume) never sets min..max or
    percentiles."""
    if window is None:
        return volume, None
    if window == "header":
        header = header_window(first)
        if header is None:
            return scale_to_unit(volume, *display_range(volume, padding, None)), "min_max"
        return apply_window(volume, *header), "header"
    if window == "percentile":
        return scale_to_unit(volume, *display_range(volume, padding, percentiles)), "percentile"
    return apply_window(volume, float(window[0]), float(window[1])), "explicit"


def ras_affine(row_dir, col_dir, slice_step, row_spacing, col_spacing, origin) -> list[list[float]]:
    """Voxel (i, j, k) -> RAS mm; ``slice_step`` is the LPS vector from one slice to the next."""
    affine = np.eye(4)
    affine[:3, 0] = row_dir * col_spacing  # i: along a row, one column apart
    affine[:3, 1] = col_dir * row_spacing  # j: down a column, one row apart
    affine[:3, 2] = slice_step  # k: slices sorted along the normal
    affine[:3, 3] = origin
    affine[:2] *= -1  # DICOM's LPS to RAS, as MONAI does
    return affine.tolist()


# --- Siemens mosaics ---------------------------------------------------------------------------
# Siemens stores an EPI volume as one image: a grid of ceil(sqrt(n)) x ceil(sqrt(n)) tiles, tile k
# being slice k along the CSA SliceNormalVector, which is not always rows x columns (sagittal
# acquisitions point the other way). ImagePositionPatient is the corner of the whole mosaic and
# is shifted to the corner of one tile (the correction used by dcm2niix and nibabel).

_CSA_IMAGE_HEADER = (0x0029, 0x1010)


def is_siemens_mosaic(ds) -> bool:
    return "MOSAIC" in [str(v).upper() for v in ds.get("ImageType", [])] and _CSA_IMAGE_HEADER in ds


def read_csa_header(raw: bytes, path: str) -> dict[str, list[str]]:
    """Siemens CSA header ("SV10" layout) -> {name: non-empty item strings}."""
    if raw[:4] != b"SV10":
        raise UnsupportedSyntaxError(path, "a Siemens CSA header in the old CSA1 layout (before VB13): not supported")
    try:
        (count,) = struct.unpack_from("<I", raw, 8)
        offset, fields = 16, {}
        for _ in range(count):
            name = raw[offset:offset + 64].split(b"\0")[0].decode("ascii", "replace")
            (items,) = struct.unpack_from("<i", raw, offset + 76)
            offset += 84
            values = []
            for _ in range(items):
                length = struct.unpack_from("<4i", raw, offset)[1]
                offset += 16
                values.append(raw[offset:offset + length].split(b"\0")[0].decode("ascii", "replace").strip())
                offset += (length + 3) // 4 * 4
            fields[name] = [v for v in values if v]
    except struct.error as exc:
        raise MalformedDicomError(path, f"the Siemens CSA image header ends early ({exc})") from exc
    return fields


def read_siemens_mosaic(
    path: str | os.PathLike,
    window: None | str | tuple[float, float] = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> DicomVolume:
    """One Siemens mosaic file -> (slices, tile rows, tile columns), geometry as read_dicom_series."""
    path = os.fspath(path)
    ds = read_header(path, stop_before_pixels=True)
    if not is_siemens_mosaic(ds):
        raise NotAnImageError(path, "not a Siemens mosaic (no MOSAIC image type or no CSA image header)")
    csa = read_csa_header(ds[_CSA_IMAGE_HEADER].value, path)
    try:
        count = int(csa["NumberOfImagesInMosaic"][0])
        slice_normal = np.array([float(v) for v in csa["SliceNormalVector"]])
    except (KeyError, IndexError, ValueError) as exc:
        raise MalformedDicomError(path, f"the CSA header lacks NumberOfImagesInMosaic/SliceNormalVector ({exc})") from exc
    mosaic = read_dicom(path, window=None).array
    grid = math.ceil(math.sqrt(count))
    rows, columns = mosaic.shape[0] // grid, mosaic.shape[1] // grid
    if rows * grid != mosaic.shape[0] or columns * grid != mosaic.shape[1]:
        raise MalformedDicomError(path, f"a {mosaic.shape} mosaic does not split into a {grid}x{grid} grid")
    tiles = mosaic.reshape(grid, rows, grid, columns).transpose(0, 2, 1, 3).reshape(grid * grid, rows, columns)[:count]

    orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_dir, col_dir = orientation[:3], orientation[3:]
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    spacing = float(ds.get("SpacingBetweenSlices") or ds.SliceThickness)
    corner = np.array([float(v) for v in ds.ImagePositionPatient])
    corner += col_dir * row_spacing * (mosaic.shape[0] - rows) / 2 + row_dir * col_spacing * (mosaic.shape[1] - columns) / 2
    normal = np.cross(row_dir, col_dir)
    normal /= np.linalg.norm(normal)
    if slice_normal @ normal < 0:
        # tiles run against rows x columns: reverse them so that k grows along it, as for series
        tiles = tiles[::-1]
        corner = corner + (count - 1) * spacing * slice_normal
    tiles = np.ascontiguousarray(tiles)
    volume, window_source = window_volume(tiles, ds, window, percentiles, modality_padding_mask(tiles, ds))
    meta = safe_meta(ds)
    meta.update(
        rows=rows,
        columns=columns,
        slices=count,
        mosaic=True,
        spacing=[spacing, row_spacing, col_spacing],
        orientation=orientation.tolist(),
        origin=corner.tolist(),
        affine=ras_affine(row_dir, col_dir, normal * spacing, row_spacing, col_spacing, corner),
        window_source=window_source,
        value_range=None if window is None else [0.0, 1.0],
        ignored_files=0,
    )
    return DicomVolume(volume, meta)
