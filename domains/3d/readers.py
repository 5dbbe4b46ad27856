"""Point cloud, mesh and LiDAR readers: one `read_points(path)` for every 3D file we accept.

open3d reads PCD/PLY/XYZ/PTS clouds and OBJ/OFF/PLY/STL meshes, laspy (+ lazrs) reads LAS/LAZ,
numpy reads NPY/NPZ. open3d returns an empty cloud, and only prints a warning, when a file is
missing or cannot be parsed, and reads some broken files without a word (see file_layouts.py);
here every such case raises a typed `PointCloudReadError` that names the file and the reason, so
a dataset in `on_error="skip"` mode can count it. Nothing a native library prints reaches the
terminal: the reason is in the error.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facetvlp.core.errors import ReadError, UnsupportedFileError
from facetvlp.core.extras import import_extra

from .file_layouts import LayoutError, check_pcd_complete, check_ply_complete, ply_header, read_off

CLOUD_SUFFIXES = (".pcd", ".xyz", ".xyzn", ".xyzrgb", ".pts")
MESH_SUFFIXES = (".obj", ".off", ".stl")
LAS_SUFFIXES = (".las", ".laz")
NUMPY_SUFFIXES = (".npy", ".npz")
# .ply holds either a cloud or a mesh: the header decides
ALL_SUFFIXES = CLOUD_SUFFIXES + MESH_SUFFIXES + LAS_SUFFIXES + NUMPY_SUFFIXES + (".ply",)


def _import_extra(module: str):
    """open3d and laspy are imported where a reader needs them (open3d alone takes seconds);
    without the 3d extra the read says which extra to install."""
    return import_extra(module, "3d", needed_by="reading 3D files")


class PointCloudReadError(ReadError):
    """A 3D file could not become a point cloud."""


class PointCloudNotFoundError(PointCloudReadError):
    """The path does not exist or is not a regular file."""


class PointCloudFormatError(PointCloudReadError):
    """The file exists but is not a valid file of its kind (bad header, truncated data ...)."""


class EmptyPointCloudError(PointCloudReadError):
    """The file parsed, but no finite point is left in it."""


class UnsupportedPointFileError(PointCloudReadError, UnsupportedFileError):
    """A suffix we do not read as 3D data."""


@dataclass
class PointCloud:
    """A cloud as arrays. `xyz` stays float64: LiDAR coordinates (~10^6 m) lose centimetres in
    float32, so conversion to float32 happens only after centring (see transforms)."""

    xyz: np.ndarray  # (N, 3) float64
    rgb: np.ndarray | None = None  # (N, 3) float32 in [0, 1]
    normals: np.ndarray | None = None  # (N, 3) float32
    intensity: np.ndarray | None = None  # (N,) float32, as stored in the file
    classification: np.ndarray | None = None  # (N,) int64, e.g. ASPRS codes for LAS
    dropped_nonfinite: int = 0  # points removed because a coordinate was NaN or inf
    meta: dict = field(default_factory=dict)  # JSON-able facts about the file

    def __len__(self) -> int:
        return len(self.xyz)

    def channels(self) -> list[str]:
        names = ["xyz"]
        names += [n for n in ("rgb", "normals", "intensity") if getattr(self, n) is not None]
        return names

    def features(self, channels: tuple[str, ...] = ("xyz",)) -> np.ndarray:
        """(N, C) float32 with the requested channels side by side, xyz first."""
        parts = []
        for name in channels:
            value = getattr(self, name, None)
            if value is None:
                raise KeyError(f"cloud has no '{name}' channel (it has {self.channels()})")
            parts.append(value.reshape(len(self.xyz), -1).astype(np.float32))
        return np.concatenate(parts, axis=1)

    def select(self, index: np.ndarray) -> "PointCloud":
        """A cloud with only the given points (boolean mask or integer index)."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return PointCloud(
            xyz=self.xyz[index], rgb=pick(self.rgb), normals=pick(self.normals),
            intensity=pick(self.intensity), classification=pick(self.classification),
            dropped_nonfinite=self.dropped_nonfinite, meta=dict(self.meta),
        )


def read_points(
    path: str | os.PathLike,
    *,
    mesh_points: int = 8192,
    mesh_sampling: str = "uniform",
    seed: int = 0,
) -> PointCloud:
    """Read any supported 3D file into a :class:`PointCloud`.

    Meshes (OBJ/OFF/STL, and PLY files that have faces) are turned into ``mesh_points`` surface
    samples, ``mesh_sampling="uniform"`` (area-weighted) or ``"poisson"`` (Poisson-disk, evenly
    spaced). Points with a NaN/inf coordinate are removed and counted in ``dropped_nonfinite``.
    """
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if os.path.isdir(path):
        raise PointCloudNotFoundError(path, "is a directory, not a file")
    if suffix not in ALL_SUFFIXES:
        raise UnsupportedPointFileError(
            path, f"'{suffix or '(no suffix)'}' is not a 3D format we read; "
            f"known: {', '.join(sorted(ALL_SUFFIXES))}"
        )
    if not os.path.isfile(path):
        raise PointCloudNotFoundError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise PointCloudFormatError(path, "the file is empty (0 bytes)")
    if suffix in LAS_SUFFIXES:
        cloud = _read_las(path)
    elif suffix in NUMPY_SUFFIXES:
        cloud = _read_numpy(path)
    elif suffix in MESH_SUFFIXES or (suffix == ".ply" and ply_face_count(path) > 0):
        cloud = sample_mesh(path, mesh_points, mesh_sampling, seed)
    else:
        cloud = _read_open3d_cloud(path)
    cloud = _drop_nonfinite(cloud)
    if len(cloud) == 0:
        raise EmptyPointCloudError(
            path, f"no finite points (all {cloud.dropped_nonfinite} had NaN/inf coordinates)"
            if cloud.dropped_nonfinite else "the file holds no points"
        )
    cloud.meta.update(source=Path(path).name, points=len(cloud),
                      dropped_nonfinite=cloud.dropped_nonfinite)
    return cloud


# -- open3d clouds ------------------------------------------------------------------------------

@contextlib.contextmanager
def _open3d_quiet():
    """open3d and the RPly library inside it print parse failures straight to the process's
    stdout/stderr (C stdio, past Python's sys.stderr); we raise instead, so both descriptors
    point at /dev/null for the call. Process-wide while it lasts: readers run in loader workers
    or the main thread, not beside other printing threads."""
    o3d = _import_extra("open3d")

    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _check_layout(path: str) -> int | None:
    """What open3d does not verify (file_layouts.py): a typed error instead of zeros or garbage.
    Returns the point count a PCD header declares."""
    name = path.lower()
    try:
        if name.endswith(".ply"):
            check_ply_complete(path)
        elif name.endswith(".pcd"):
            return check_pcd_complete(path)
    except LayoutError as exc:
        raise PointCloudFormatError(path, str(exc)) from None
    return None


def _read_open3d_cloud(path: str) -> PointCloud:
    o3d = _import_extra("open3d")

    expected = _check_layout(path)
    # the tensor reader keeps every PCD field (intensity, curvature ...); the legacy one drops them
    with _open3d_quiet():
        tcloud = o3d.t.io.read_point_cloud(path)
    attrs = {name: tcloud.point[name].numpy() for name in tcloud.point}
    if "positions" not in attrs or len(attrs["positions"]) == 0:
        raise PointCloudFormatError(
            path, "open3d could not parse any points (bad header, truncated data, or not a "
            f"{Path(path).suffix.lstrip('.').upper()} file)"
        )
    xyz = attrs["positions"].astype(np.float64)
    if expected is not None and expected != len(xyz):
        raise PointCloudFormatError(path, f"header declares {expected} points, read {len(xyz)}")
    rgb = attrs.get("colors")
    if rgb is not None:
        rgb = _unit_colours(rgb)
    normals = attrs.get("normals")
    intensity = attrs.get("intensity")
    meta = {"format": Path(path).suffix.lstrip(".").lower(), "fields": sorted(attrs)}
    return PointCloud(
        xyz=xyz,
        rgb=rgb,
        normals=None if normals is None else normals.astype(np.float32),
        intensity=None if intensity is None else intensity.reshape(-1).astype(np.float32),
        meta=meta,
    )


def _unit_colours(colours: np.ndarray) -> np.ndarray:
    if np.issubdtype(colours.dtype, np.integer):
        return (colours.astype(np.float32) / np.iinfo(colours.dtype).max).astype(np.float32)
    return colours.astype(np.float32)


def ply_face_count(path: str) -> int:
    """Number of faces a PLY header declares (0 for a pure point cloud)."""
    try:
        _, elements, _ = ply_header(path)
    except LayoutError as exc:
        raise PointCloudFormatError(path, str(exc)) from None
    return sum(count for name, count, _ in elements if name == "face")


# -- meshes -------------------------------------------------------------------------------------

def read_mesh(path: str | os.PathLike):
    """An open3d TriangleMesh with at least one triangle, or a typed error."""
    o3d = _import_extra("open3d")

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PointCloudNotFoundError(path, "no such file")
    if path.lower().endswith(".off"):
        mesh = _read_off_mesh(path)
    else:
        _check_layout(path)
        with _open3d_quiet():
            mesh = o3d.io.read_triangle_mesh(path)
    if len(mesh.vertices) == 0:
        raise PointCloudFormatError(path, "open3d could not read any mesh vertices")
    if len(mesh.triangles) == 0:
        raise PointCloudFormatError(path, "the mesh has vertices but no triangles to sample")
    return mesh


def _read_off_mesh(path: str):
    o3d = _import_extra("open3d")

    try:
        vertices, triangles = read_off(path)
    except LayoutError as exc:
        raise PointCloudFormatError(path, str(exc)) from None
    return o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(triangles))


def sample_mesh(path: str, n_points: int, sampling: str = "uniform", seed: int = 0) -> PointCloud:
    o3d = _import_extra("open3d")

    if sampling not in ("uniform", "poisson"):
        raise ValueError(f"mesh_sampling must be 'uniform' or 'poisson', got {sampling!r}")
    mesh = read_mesh(path)
    # open3d draws from its own global generator; seeding it makes sampling repeatable
    o3d.utility.random.seed(seed)
    if sampling == "uniform":
        cloud = mesh.sample_points_uniformly(number_of_points=n_points, use_triangle_normal=True)
    else:
        cloud = mesh.sample_points_poisson_disk(number_of_points=n_points, use_triangle_normal=True)
    xyz = np.asarray(cloud.points, dtype=np.float64)
    return PointCloud(
        xyz=xyz,
        rgb=np.asarray(cloud.colors, dtype=np.float32) if cloud.has_colors() else None,
        normals=np.asarray(cloud.normals, dtype=np.float32) if cloud.has_normals() else None,
        meta={
            "format": Path(path).suffix.lstrip(".").lower(),
            "mesh_vertices": len(mesh.vertices),
            "mesh_triangles": len(mesh.triangles),
            "sampling": sampling,
        },
    )


# -- LAS / LAZ ----------------------------------------------------------------------------------

try:  # the LAZ decompressor raises its own type on a cut or corrupt chunk
    from lazrs import LazrsError

    _LAZ_ERRORS: tuple[type[BaseException], ...] = (LazrsError,)
except ImportError:  # laspy without lazrs reads LAS only
    _LAZ_ERRORS = ()

def _read_las(path: str) -> PointCloud:
    laspy = _import_extra("laspy")

    try:
        las = laspy.read(path)
    except (laspy.errors.LaspyException, ValueError, EOFError, OSError, *_LAZ_ERRORS) as exc:
        raise PointCloudFormatError(path, f"laspy could not read it: {exc}") from exc
    dims = set(las.point_format.dimension_names)
    # x/y/z are the scaled, offset coordinates (X * scale + offset), in the file's CRS units
    xyz = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    rgb = None
    if {"red", "green", "blue"} <= dims:
        raw = np.stack([las.red, las.green, las.blue], axis=1).astype(np.float32)
        # LAS says 16-bit colour, yet many writers store 8-bit values: scale by what is there
        rgb = raw / (255.0 if raw.max(initial=0) <= 255 else 65535.0)
    header = las.header
    meta = {
        "format": Path(path).suffix.lstrip(".").lower(),
        "las_version": f"{header.version.major}.{header.version.minor}",
        "point_format": int(header.point_format.id),
        "scales": [float(s) for s in header.scales],
        "offsets": [float(o) for o in header.offsets],
    }
    crs = _las_crs_wkt(header)
    if crs:
        meta["crs"] = crs
    return PointCloud(
        xyz=xyz.astype(np.float64),
        rgb=rgb,
        intensity=np.asarray(las.intensity, dtype=np.float32) if "intensity" in dims else None,
        classification=(
            np.asarray(las.classification, dtype=np.int64) if "classification" in dims else None
        ),
        meta=meta,
    )


def _las_crs_wkt(header) -> str | None:
    try:
        crs = header.parse_crs()
    except Exception:  # noqa: BLE001 - a broken CRS VLR must not make the points unreadable
        return None
    return None if crs is None else crs.to_wkt()


# -- numpy --------------------------------------------------------------------------------------

NPZ_KEYS = {
    "xyz": ("points", "xyz", "pos", "positions"),
    "rgb": ("rgb", "colors", "colours"),
    "normals": ("normals", "normal"),
    "intensity": ("intensity",),
    "classification": ("classification", "labels", "label"),
}


def _read_numpy(path: str) -> PointCloud:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise PointCloudFormatError(path, f"numpy could not load it: {exc}") from exc
    if isinstance(data, np.ndarray):
        return _cloud_from_npy(path, data)
    with data:
        arrays = {key: data[key] for key in data.files}
    found = {}
    for channel, keys in NPZ_KEYS.items():
        key = next((k for k in keys if k in arrays), None)
        if key is not None:
            found[channel] = arrays[key]
    if "xyz" not in found:
        raise PointCloudFormatError(
            path, f"no point array; expected one of {NPZ_KEYS['xyz']}, found {sorted(arrays)}"
        )
    xyz = found["xyz"]
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise PointCloudFormatError(path, f"points must be (N, >=3), got {xyz.shape}")
    n = len(xyz)
    for channel, value in found.items():
        if len(value) != n:
            raise PointCloudFormatError(path, f"'{channel}' has {len(value)} rows, points {n}")
    return PointCloud(
        xyz=xyz[:, :3].astype(np.float64),
        rgb=None if "rgb" not in found else _unit_colours(found["rgb"]),
        normals=None if "normals" not in found else found["normals"].astype(np.float32),
        intensity=(None if "intensity" not in found
                   else found["intensity"].reshape(n).astype(np.float32)),
        classification=(None if "classification" not in found
                        else found["classification"].reshape(n).astype(np.int64)),
        meta={"format": "npz", "arrays": sorted(arrays)},
    )


def _cloud_from_npy(path: str, array: np.ndarray) -> PointCloud:
    # (N, 3) is xyz; (N, 6) is xyz + normals, the layout of the resampled ModelNet40 release
    if array.ndim != 2 or array.shape[1] not in (3, 6) or not np.issubdtype(array.dtype, np.number):
        raise PointCloudFormatError(
            path, f".npy must be a numeric (N, 3) xyz or (N, 6) xyz+normals array, got "
            f"{array.dtype} {array.shape}; use .npz with named arrays for other channels"
        )
    normals = array[:, 3:6].astype(np.float32) if array.shape[1] == 6 else None
    return PointCloud(xyz=array[:, :3].astype(np.float64), normals=normals,
                      meta={"format": "npy"})


def _drop_nonfinite(cloud: PointCloud) -> PointCloud:
    finite = np.isfinite(cloud.xyz).all(axis=1)
    dropped = int((~finite).sum())
    if dropped == 0:
        return cloud
    kept = cloud.select(finite)
    kept.dropped_nonfinite = cloud.dropped_nonfinite + dropped
    return kept
