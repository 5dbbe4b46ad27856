"""The checks open3d leaves out: is a PLY or PCD file as long as its header says, are the rows of an
ASCII PCD numbers, and an OFF parser that accepts ModelNet's header defect.

open3d reads a truncated binary PLY as zeros, an ASCII PCD with broken rows as uninitialised
memory, and refuses ModelNet's OFF files whose first line runs into the counts (``OFF490 518 0``,
a known defect of that dataset). These functions raise :class:`LayoutError` with the reason; the
readers turn it into a ``PointCloudFormatError`` that names the file.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np


class LayoutError(ValueError):
    """The bytes do not match the layout the header declares."""


_PLY_TYPES = {
    "char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2, "ushort": 2,
    "uint16": 2, "int": 4, "int32": 4, "uint": 4, "uint32": 4, "float": 4, "float32": 4,
    "double": 8, "float64": 8,
}
_HEAD_BYTES = 65536


def _head(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(_HEAD_BYTES)


# -- PLY ------------------------------------------------------------------------------------------

def ply_header(path: str) -> tuple[str, list[tuple[str, int, list[list[str]]]], int]:
    """(format, [(element, count, [property tokens])], header length in bytes) of a PLY file."""
    head = _head(path)
    if not head.startswith(b"ply"):
        raise LayoutError("not a PLY file (missing 'ply' magic)")
    match = re.search(rb"end_header\r?\n", head)
    if match is None:
        raise LayoutError(f"PLY header has no end_header in its first {_HEAD_BYTES // 1024} KiB")
    fmt, elements = None, []
    for line in head[: match.start()].decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            try:
                elements.append((words[1], int(words[2]), []))
            except ValueError:
                raise LayoutError(f"PLY element count is not an integer: {line!r}") from None
        elif words[0] == "property" and elements:
            elements[-1][2].append(words[1:])
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise LayoutError(f"PLY format {fmt!r} is not ascii or binary")
    return fmt, elements, match.end()


def ply_face_count(path: str) -> int:
    """Number of faces a PLY header declares (0 for a pure point cloud)."""
    _, elements, _ = ply_header(path)
    return sum(count for name, count, _ in elements if name == "face")


def check_ply_complete(path: str) -> None:
    """Raise LayoutError when the body is shorter than the elements the header declares."""
    fmt, elements, start = ply_header(path)
    size = os.path.getsize(path)
    if fmt == "ascii":
        with open(path, "rb") as handle:
            handle.seek(start)
            rows = sum(1 for line in handle if line.strip())
        declared = sum(count for _, count, _ in elements)
        if rows < declared:
            raise LayoutError(f"truncated: the header declares {declared} element rows, the file has {rows}")
        return
    offset = start
    endian = "<" if fmt == "binary_little_endian" else ">"
    for name, count, properties in elements:
        offset = _binary_element_end(path, offset, count, properties, endian, name)
        if offset > size:
            raise LayoutError(
                f"truncated: {size} bytes where the header's {count} '{name}' elements end at byte {offset}"
            )


def _binary_element_end(path, offset, count, properties, endian, name) -> int:
    try:
        if not any(p[0] == "list" for p in properties):
            return offset + count * sum(_PLY_TYPES[p[0]] for p in properties)
        if len(properties) != 1 or len(properties[0]) < 3:
            raise LayoutError(f"PLY element '{name}' mixes list and scalar properties: not supported")
        count_size, item_size = _PLY_TYPES[properties[0][1]], _PLY_TYPES[properties[0][2]]
    except KeyError as exc:
        raise LayoutError(f"unknown PLY property type {exc.args[0]!r} in element '{name}'") from None
    # lists (faces): walk the counts; all-triangle meshes are checked in one strided read
    with open(path, "rb") as handle:
        handle.seek(offset)
        body = handle.read()
    count_dtype = np.dtype(f"{endian}u{count_size}")
    stride = count_size + 3 * item_size
    if len(body) >= count * stride:
        firsts = np.ndarray((count,), count_dtype, body, 0, (stride,)) if count else np.empty(0)
        if np.all(firsts == 3):
            return offset + count * stride
    position = 0
    for _ in range(count):
        if position + count_size > len(body):
            return offset + len(body) + 1  # ends inside this element
        items = int(np.frombuffer(body, count_dtype, 1, position)[0])
        position += count_size + items * item_size
    return offset + position


# -- PCD ------------------------------------------------------------------------------------------

def check_pcd_complete(path: str) -> int:
    """The number of points a PCD declares, after checking that the data holds them: binary data
    long enough, every ASCII row exactly as many numbers as the fields' counts."""
    head = _head(path)
    match = re.search(rb"^DATA\s+(\w+)[^\n]*\n", head, re.MULTILINE)
    if match is None:
        raise LayoutError("PCD header has no DATA line")
    fields: dict[str, list[str]] = {}
    for line in head[: match.start()].decode("ascii", "replace").splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            fields[words[0].upper()] = words[1:]
    try:
        points = int(fields["POINTS"][0])
        sizes = [int(v) for v in fields["SIZE"]]
        counts = [int(v) for v in fields.get("COUNT", ["1"] * len(sizes))]
    except (KeyError, IndexError, ValueError) as exc:
        raise LayoutError(f"PCD header lacks a valid POINTS/SIZE/COUNT line ({exc})") from None
    data_type, start = match.group(1).decode(), match.end()
    size = os.path.getsize(path)
    if data_type == "binary":
        needed = start + points * sum(s * c for s, c in zip(sizes, counts))
        if size < needed:
            raise LayoutError(f"truncated: {size} bytes where {points} binary points need {needed}")
    elif data_type == "binary_compressed":
        if size < start + 8:
            raise LayoutError("truncated: the compressed block header is missing")
        (compressed,) = np.frombuffer(head[start:start + 4], "<u4") if len(head) >= start + 4 else (0,)
        if size < start + 8 + int(compressed):
            raise LayoutError(f"truncated: {size} bytes where the compressed data needs {start + 8 + int(compressed)}")
    elif data_type == "ascii":
        _check_ascii_rows(path, start, points, sum(counts))
    else:
        raise LayoutError(f"PCD DATA type {data_type!r} is not ascii, binary or binary_compressed")
    return points


def _check_ascii_rows(path: str, start: int, points: int, columns: int) -> None:
    with open(path, "rb") as handle:
        handle.seek(start)
        text = handle.read().decode("ascii", "replace")
    rows = [line for line in text.splitlines() if line.strip()]
    if len(rows) != points:
        raise LayoutError(f"POINTS says {points}, the data has {len(rows)} rows")
    try:
        values = np.loadtxt(io.StringIO("\n".join(rows)), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise LayoutError(f"an ASCII row is not {columns} numbers ({exc})") from None
    if values.shape[1] != columns:
        raise LayoutError(f"ASCII rows have {values.shape[1]} values, the fields declare {columns}")


# -- OFF ------------------------------------------------------------------------------------------

_OFF_HEADER = re.compile(r"^(?:ST)?(?:C)?(?:N)?OFF(?=\s|$|\d)")


def read_off(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, triangles (T, 3) int64) of an OFF file; polygons are fanned.

    Accepts the header running into the counts on the first line (``OFF490 518 0``), as in many
    ModelNet files.
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    lines = [line.split(b"#", 1)[0].strip() for line in raw.splitlines()]
    lines = [line.decode("ascii", "replace") for line in lines if line]
    if not lines or not _OFF_HEADER.match(lines[0]):
        raise LayoutError("not an OFF file (the first line is not 'OFF')")
    rest = lines[0][_OFF_HEADER.match(lines[0]).end():].split()
    body = lines[1:]
    if not rest:
        if not body:
            raise LayoutError("truncated: no vertex/face counts after 'OFF'")
        rest, body = body[0].split(), body[1:]
    try:
        n_vertices, n_faces = int(rest[0]), int(rest[1])
    except (IndexError, ValueError):
        raise LayoutError(f"OFF counts line is not 'vertices faces edges': {' '.join(rest)!r}") from None
    if len(body) < n_vertices + n_faces:
        raise LayoutError(
            f"truncated: the header declares {n_vertices} vertices and {n_faces} faces, "
            f"the file has {len(body)} data lines"
        )
    try:
        vertices = np.array([line.split()[:3] for line in body[:n_vertices]], dtype=np.float64)
        triangles = []
        for line in body[n_vertices:n_vertices + n_faces]:
            numbers = [int(v) for v in line.split()]
            corners = numbers[1:1 + numbers[0]]
            if numbers[0] < 3 or len(corners) != numbers[0]:
                raise LayoutError(f"face line {line!r} does not list its {numbers[0]} vertices")
            triangles += [(corners[0], corners[k], corners[k + 1]) for k in range(1, len(corners) - 1)]
    except ValueError as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"a vertex or face line is not numbers ({exc})") from None
    if vertices.shape != (n_vertices, 3):
        raise LayoutError("a vertex line has fewer than 3 coordinates")
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if triangles.size and (triangles.min() < 0 or triangles.max() >= n_vertices):
        raise LayoutError(f"a face refers to a vertex outside 0..{n_vertices - 1}")
    return vertices, triangles
