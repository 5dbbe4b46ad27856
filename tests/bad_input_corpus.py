"""A corpus of broken inputs, each made from a real file: truncations, zero bytes, wrong formats
behind a known suffix, directories with a file's name.

Sources are the project's own real samples (``data/``) and pydicom's bundled test files, so the
corpus needs no ../shared/data. ``build_corpus(folder)`` writes every case and returns them with
the reader to call, the error type that reader must raise, and how a dataset meets the file:

* ``"item"``: the file is one item of a dataset among readable ones: ``on_error="skip"`` serves
  another item and counts this one;
* ``"index"``: the file indexes or configures a whole dataset (a manifest, an OSM layer, LiDAR
  tiles, a config): the dataset cannot be built, so it raises the same typed error even in skip
  mode.
"""

from __future__ import annotations

import bz2
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
GEOTIFF = DATA / "remote_sensing/new_brunswick/23322E759967N_clipped_1m_1of2.tif"
GEOJSON = DATA / "remote_sensing/new_brunswick/landcover_osm_tags.geojson"
PBF = DATA / "remote_sensing/osm/aguascalientes.osm.pbf"
OSM_BZ2 = DATA / "remote_sensing/osm/West-Oakland.osm.bz2"
PCD = DATA / "pointcloud/pcl_scans/bun0.pcd"
LAS = DATA / "pointcloud/lidar_las/file_with_both_wkt_and_geotiff_vlrs.las"
LAZ = DATA / "pointcloud/lidar_las/autzen_trim.laz"
PNG = next(iter(sorted((DATA / "medical/tb_cxr/normal").glob("*.png"))))
CONFIG = REPO / "configs/medical/pneumonia_faceted_tiny_cpu.py"


@dataclass
class BadInput:
    name: str
    path: Path
    kind: str  # dicom | raster | osm | points | lidar | table | config
    error: type  # what the reader must raise (a subclass is fine)
    reader: Callable[[Path], Any]
    dataset: str  # "item" or "index", see the module docstring
    reason: str | None = None  # a regex the reader's reason must match, where the reason matters


def _cut(source: Path, target: Path, keep: float | int) -> Path:
    data = source.read_bytes()
    size = keep if isinstance(keep, int) else int(len(data) * keep)
    target.write_bytes(data[:size])
    return target


def _empty(target: Path) -> Path:
    target.write_bytes(b"")
    return target


def _directory(target: Path) -> Path:
    target.mkdir()
    (target / "inside.txt").write_text("a folder named like a data file")
    return target


def _wrong(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)  # a real file of another format behind this suffix
    return target


def _bun0_points() -> np.ndarray:
    import open3d as o3d

    return np.asarray(o3d.io.read_point_cloud(str(PCD)).points)


def _hull_mesh():
    """A real-data mesh: the convex hull of the bunny scan."""
    import open3d as o3d

    cloud = o3d.io.read_point_cloud(str(PCD))
    mesh, _ = cloud.compute_convex_hull()
    return mesh


def write_point_files(folder: Path) -> dict[str, Path]:
    """Well-formed PLY (binary, ASCII, mesh), OFF, OBJ and XYZ files made from the bunny scan."""
    import open3d as o3d

    cloud = o3d.io.read_point_cloud(str(PCD))
    mesh = _hull_mesh()
    files = {
        "ply_binary": folder / "bunny_binary.ply",
        "ply_ascii": folder / "bunny_ascii.ply",
        "ply_mesh": folder / "hull.ply",
        "off": folder / "hull.off",
        "obj": folder / "hull.obj",
        "xyz": folder / "bunny.xyz",
    }
    o3d.io.write_point_cloud(str(files["ply_binary"]), cloud, write_ascii=False)
    o3d.io.write_point_cloud(str(files["ply_ascii"]), cloud, write_ascii=True)
    o3d.io.write_triangle_mesh(str(files["ply_mesh"]), mesh, write_ascii=False)
    o3d.io.write_triangle_mesh(str(files["off"]), mesh)
    o3d.io.write_triangle_mesh(str(files["obj"]), mesh)
    np.savetxt(files["xyz"], np.asarray(cloud.points), fmt="%.6f")
    return files


def _osm_xml(target: Path) -> Path:
    target.write_bytes(bz2.decompress(OSM_BZ2.read_bytes()))
    return target


def build_corpus(folder: Path) -> list[BadInput]:
    import pydicom.data

    from facetvlp.core.config import load_config
    from facetvlp.core.errors import ConfigError
    from facetvlp.domains.medical.datasets import TableFormatError, read_csv, read_jsonl
    from facetvlp.domains.medical.dicom_read import (
        DicomReadError,
        NotDicomError,
        TruncatedDicomError,
        read_dicom,
    )
    from facetvlp.domains.pointcloud.readers import (
        EmptyPointCloudError,
        PointCloudFormatError,
        PointCloudNotFoundError,
        read_points,
    )
    from facetvlp.domains.remote_sensing.geotiff import (
        NotARasterError,
        RasterReadError,
        TruncatedRasterError,
        read_window,
    )
    from facetvlp.domains.remote_sensing.osm import OSMReadError, read_osm_layer

    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good"
    good.mkdir(exist_ok=True)
    points = write_point_files(good)
    ct = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    osm_xml = _osm_xml(good / "west_oakland.osm")
    f = folder
    cases: list[BadInput] = []

    def add(name, path, kind, error, reader, dataset="item"):
        reason = "directory" if path.is_dir() else REASONS.get(name)
        cases.append(BadInput(name, path, kind, error, reader, dataset, reason))

    # -- DICOM (pydicom's real CT_small) ------------------------------------------------------
    add("dcm_cut_in_header", _cut(ct, f / "cut_header.dcm", 400), "dicom", DicomReadError, read_dicom)
    add("dcm_cut_in_pixels", _cut(ct, f / "cut_pixels.dcm", 0.7), "dicom", TruncatedDicomError, read_dicom)
    add("dcm_empty", _empty(f / "empty.dcm"), "dicom", NotDicomError, read_dicom)
    add("dcm_is_png", _wrong(PNG, f / "png_inside.dcm"), "dicom", NotDicomError, read_dicom)
    add("dcm_directory", _directory(f / "folder.dcm"), "dicom", DicomReadError, read_dicom)
    # -- GeoTIFF -----------------------------------------------------------------------------
    add("tif_cut_in_header", _cut(GEOTIFF, f / "cut_header.tif", 200), "raster", RasterReadError, read_window)
    add("tif_cut_in_pixels", _cut(GEOTIFF, f / "cut_pixels.tif", 0.5), "raster", TruncatedRasterError, read_window)
    add("tif_empty", _empty(f / "empty.tif"), "raster", RasterReadError, read_window)
    add("tif_is_las", _wrong(LAS, f / "las_inside.tif"), "raster", NotARasterError, read_window)
    add("tif_directory", _directory(f / "folder.tif"), "raster", RasterReadError, read_window)
    # -- OSM: XML, bzip2 XML, PBF, GeoJSON ------------------------------------------------------
    add("osm_cut", _cut(osm_xml, f / "cut.osm", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("osm_empty", _empty(f / "empty.osm"), "osm", OSMReadError, read_osm_layer, "index")
    add("osm_is_json", _wrong(GEOJSON, f / "json_inside.osm"), "osm", OSMReadError, read_osm_layer, "index")
    add("osm_bz2_cut", _cut(OSM_BZ2, f / "cut.osm.bz2", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("osm_bz2_is_plain_xml", _wrong(osm_xml, f / "plain.osm.bz2"), "osm", OSMReadError, read_osm_layer, "index")
    add("pbf_cut", _cut(PBF, f / "cut.osm.pbf", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("pbf_empty", _empty(f / "empty.osm.pbf"), "osm", OSMReadError, read_osm_layer, "index")
    add("pbf_is_xml", _wrong(osm_xml, f / "xml_inside.osm.pbf"), "osm", OSMReadError, read_osm_layer, "index")
    add("bare_pbf_cut", _cut(PBF, f / "cut.pbf", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("pbf_directory", _directory(f / "folder.osm.pbf"), "osm", OSMReadError, read_osm_layer, "index")
    add("geojson_cut", _cut(GEOJSON, f / "cut.geojson", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("json_cut", _cut(GEOJSON, f / "cut.json", 0.5), "osm", OSMReadError, read_osm_layer, "index")
    add("json_not_geojson", _write(f / "options.json", json.dumps({"lr": 0.1})), "osm", OSMReadError,
        read_osm_layer, "index")
    add("geojson_empty", _empty(f / "empty.geojson"), "osm", OSMReadError, read_osm_layer, "index")
    # -- point clouds and meshes -----------------------------------------------------------------
    add("ply_binary_cut", _cut(points["ply_binary"], f / "cut_binary.ply", 0.6), "points", PointCloudFormatError, read_points)
    add("ply_ascii_cut", _cut(points["ply_ascii"], f / "cut_ascii.ply", 0.6), "points", PointCloudFormatError, read_points)
    add("ply_mesh_cut", _cut(points["ply_mesh"], f / "cut_mesh.ply", 0.8), "points", PointCloudFormatError, read_points)
    add("ply_empty", _empty(f / "empty.ply"), "points", PointCloudFormatError, read_points)
    add("ply_is_pcd", _wrong(PCD, f / "pcd_inside.ply"), "points", PointCloudFormatError, read_points)
    add("pcd_ascii_malformed", _malformed_ascii_pcd(f / "malformed_ascii.pcd"), "points", PointCloudFormatError, read_points)
    add("pcd_cut", _cut(PCD, f / "cut.pcd", 0.5), "points", PointCloudFormatError, read_points)
    add("pcd_empty", _empty(f / "empty.pcd"), "points", PointCloudFormatError, read_points)
    add("pcd_directory", _directory(f / "folder.pcd"), "points", PointCloudNotFoundError, read_points)
    add("off_cut", _cut(points["off"], f / "cut.off", 0.5), "points", PointCloudFormatError, read_points)
    add("off_is_ply", _wrong(points["ply_mesh"], f / "ply_inside.off"), "points", PointCloudFormatError, read_points)
    add("obj_without_faces", _obj_without_faces(points["obj"], f / "no_faces.obj"), "points",
        PointCloudFormatError, read_points)
    add("obj_is_png", _wrong(PNG, f / "png_inside.obj"), "points", PointCloudFormatError, read_points)
    add("xyz_malformed", _malformed_xyz(points["xyz"], f / "malformed.xyz"), "points", PointCloudFormatError, read_points)
    add("xyz_empty", _empty(f / "empty.xyz"), "points", PointCloudFormatError, read_points)
    # -- LiDAR ---------------------------------------------------------------------------------
    add("las_cut", _cut(LAS, f / "cut.las", 0.5), "lidar", PointCloudFormatError, read_points, "index")
    add("las_zero_points", _zero_point_las(f / "zero_points.las"), "lidar", EmptyPointCloudError, read_points, "index")
    add("laz_cut", _cut(LAZ, f / "cut.laz", 0.5), "lidar", PointCloudFormatError, read_points, "index")
    add("las_is_tif", _wrong(GEOTIFF, f / "tif_inside.las"), "lidar", PointCloudFormatError, read_points, "index")
    add("laz_empty", _empty(f / "empty.laz"), "lidar", PointCloudFormatError, read_points, "index")
    # -- manifests ---------------------------------------------------------------------------------
    read_manifest = lambda p: read_csv(p, required=("path",))  # noqa: E731
    add("csv_empty", _empty(f / "empty.csv"), "table", TableFormatError, read_manifest, "index")
    add("csv_is_png", _wrong(PNG, f / "png_inside.csv"), "table", TableFormatError, read_manifest, "index")
    add("csv_without_path_column", _write(f / "no_path.csv", "file,labels\na.png,normal\n"), "table",
        TableFormatError, read_manifest, "index")
    add("csv_directory", _directory(f / "folder.csv"), "table", TableFormatError, read_manifest, "index")
    jsonl = "\n".join(json.dumps({"path": p.name, "labels": ["normal"]}) for p in sorted(PNG.parent.glob("*.png")))
    add("jsonl_cut", _write(f / "cut.jsonl", jsonl[: len(jsonl) // 2 + 7]), "table", TableFormatError, read_jsonl, "index")
    add("jsonl_directory", _directory(f / "folder.jsonl"), "table", TableFormatError, read_jsonl, "index")
    add("jsonl_is_png", _wrong(PNG, f / "png_inside.jsonl"), "table", TableFormatError, read_jsonl, "index")
    # -- configs -------------------------------------------------------------------------------------
    add("config_cut", _cut(CONFIG, f / "cut_config.py", 0.5), "config", ConfigError, load_config, "index")
    add("config_directory", _directory(f / "folder_config.py"), "config", ConfigError, load_config, "index")
    add("config_is_png", _wrong(PNG, f / "png_config.py"), "config", ConfigError, load_config, "index")
    return cases


# what the message must say where a vaguer one was given before (issue 10)
REASONS = {
    "ply_binary_cut": "truncated", "ply_ascii_cut": "truncated", "ply_mesh_cut": "truncated",
    "pcd_cut": "POINTS says", "pcd_ascii_malformed": "not 3 numbers", "off_cut": "truncated",
    "las_zero_points": "holds no points", "dcm_cut_in_pixels": "shorter than the image needs",
}


def _write(target: Path, text: str) -> Path:
    target.write_text(text)
    return target


def _malformed_ascii_pcd(target: Path) -> Path:
    """The header of a 100-point ASCII PCD over real bunny points, two rows of which are broken."""
    xyz = _bun0_points()[:100]
    rows = [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in xyz]
    rows[40], rows[41] = "1 2", "foo bar"
    header = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\n"
              "TYPE F F F\nCOUNT 1 1 1\nWIDTH 100\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 100\nDATA ascii\n")
    target.write_text(header + "\n".join(rows) + "\n")
    return target


def _malformed_xyz(source: Path, target: Path) -> Path:
    lines = source.read_text().splitlines()
    lines[10] = "12.5 not-a-number 3"
    target.write_text("\n".join(lines) + "\n")
    return target


def _obj_without_faces(source: Path, target: Path) -> Path:
    lines = [line for line in source.read_text().splitlines() if not line.startswith("f ")]
    target.write_text("\n".join(lines) + "\n")
    return target


def _zero_point_las(target: Path) -> Path:
    """The real LAS file's header and VLRs with every point removed."""
    import laspy

    las = laspy.read(LAS)
    empty = laspy.LasData(las.header)
    empty.points = las.points[:0]
    empty.write(target)
    return target
