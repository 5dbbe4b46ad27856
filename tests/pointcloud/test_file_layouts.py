"""What open3d reads wrongly or not at all, made from the real bunny scan: our OFF parser against
open3d's on a well-formed file and on ModelNet's run-on header; truncated PLY and malformed ASCII
PCD, which open3d turns into zeros or garbage, raise typed errors instead."""

from __future__ import annotations

import struct

import numpy as np
import open3d as o3d
import pytest

from bad_input_corpus import PCD, write_point_files

from facetvlp.domains.pointcloud.file_layouts import LayoutError, check_ply_complete, read_off
from facetvlp.domains.pointcloud.readers import PointCloudFormatError, read_mesh, read_points


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_point_files(tmp_path_factory.mktemp("layouts"))


def test_off_parser_reads_what_open3d_reads(files):
    vertices, triangles = read_off(str(files["off"]))
    reference = o3d.io.read_triangle_mesh(str(files["off"]))
    assert len(triangles) > 100
    np.testing.assert_allclose(vertices, np.asarray(reference.vertices), atol=1e-6)
    np.testing.assert_array_equal(triangles, np.asarray(reference.triangles))


def test_modelnet_run_on_off_header_is_read_like_the_well_formed_file(files, tmp_path):
    lines = files["off"].read_text().splitlines()
    assert lines[0] == "OFF"
    broken = tmp_path / "modelnet_style.off"
    broken.write_text("\n".join([f"OFF{lines[1]}"] + lines[2:]) + "\n")  # "OFF105 206 0"
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        assert len(o3d.io.read_triangle_mesh(str(broken)).vertices) == 0  # why we parse OFF ourselves
    fixed, ours = read_mesh(files["off"]), read_mesh(broken)
    np.testing.assert_array_equal(np.asarray(ours.vertices), np.asarray(fixed.vertices))
    np.testing.assert_array_equal(np.asarray(ours.triangles), np.asarray(fixed.triangles))
    np.testing.assert_array_equal(read_points(broken, seed=3).xyz, read_points(files["off"], seed=3).xyz)


def test_off_polygons_are_fanned_and_bad_indices_refused(tmp_path):
    quad = tmp_path / "quad.off"
    quad.write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    _, triangles = read_off(str(quad))
    np.testing.assert_array_equal(triangles, [[0, 1, 2], [0, 2, 3]])
    bad = tmp_path / "bad_index.off"
    bad.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n1 1 0\n3 0 1 7\n")
    with pytest.raises(LayoutError, match="outside 0..2"):
        read_off(str(bad))


def test_truncated_binary_ply_is_refused_where_open3d_pads_with_zeros(files, tmp_path):
    data = files["ply_binary"].read_bytes()
    header_end = data.index(b"end_header\n") + len(b"end_header\n")
    row = (len(data) - header_end) // 397  # 397 bunny points: xyz + normals as float64
    cut = tmp_path / "half.ply"
    cut.write_bytes(data[: header_end + 200 * row])
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        legacy = np.asarray(o3d.io.read_point_cloud(str(cut)).points)
    assert len(legacy) in (0, 397)  # open3d gives nothing, or 397 points the last of which are zeros
    with pytest.raises(PointCloudFormatError, match="truncated"):
        read_points(cut)


def test_binary_ply_with_quads_and_triangles_is_walked_exactly(tmp_path):
    """A mesh whose faces are not all triangles: the list counts must be walked one by one."""
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1]], dtype="<f4")
    faces = [(0, 1, 2, 3), (0, 1, 4), (1, 2, 4)]
    header = ("ply\nformat binary_little_endian 1.0\nelement vertex 5\nproperty float x\nproperty float y\n"
              "property float z\nelement face 3\nproperty list uchar int vertex_indices\nend_header\n").encode()
    body = vertices.tobytes() + b"".join(struct.pack(f"<B{len(f)}i", len(f), *f) for f in faces)
    whole = tmp_path / "mixed.ply"
    whole.write_bytes(header + body)
    check_ply_complete(str(whole))
    assert len(read_mesh(whole).triangles) == 4
    cut = tmp_path / "mixed_cut.ply"
    cut.write_bytes(header + body[:-3])
    with pytest.raises(LayoutError, match="truncated"):
        check_ply_complete(str(cut))


def test_ascii_pcd_with_broken_rows_is_refused(tmp_path):
    points = np.asarray(o3d.io.read_point_cloud(str(PCD)).points)[:100]
    rows = [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in points]
    header = ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 100\nHEIGHT 1\n"
              "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 100\nDATA ascii\n")
    good = tmp_path / "good.pcd"
    good.write_text(header + "\n".join(rows) + "\n")
    np.testing.assert_allclose(read_points(good).xyz, points, atol=1e-6)
    rows[50], rows[51] = "1 2", "foo bar"
    broken = tmp_path / "broken.pcd"
    broken.write_text(header + "\n".join(rows) + "\n")
    with pytest.raises(PointCloudFormatError, match="not 3 numbers"):
        read_points(broken)
    short = tmp_path / "short.pcd"
    short.write_text(header + "\n".join(rows[:60]) + "\n")
    with pytest.raises(PointCloudFormatError, match="POINTS says 100, the data has 60 rows"):
        read_points(short)
