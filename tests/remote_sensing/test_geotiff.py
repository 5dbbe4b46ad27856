"""GeoTIFF windowed reads against rasterio's own reads, on every real raster in shared data."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from rasterio.windows import Window

from facetvlp.core.errors import ReadError
from facetvlp.domains.remote_sensing.geotiff import (
    BandMismatchError,
    NoGeoreferenceError,
    NotARasterError,
    RasterReadError,
    RasterSource,
    TruncatedRasterError,
    normalise,
    read_window,
    tile_footprint,
    window_sample,
)

REPO = Path(__file__).resolve().parents[2]
RS_DATA = Path(os.environ.get("FACETVLP_SHARED_DATA", REPO.parent / "shared" / "data")) / (
    "remote_sensing")


def _split_real_files():
    """Every file under shared remote_sensing data, split by whether rasterio opens it."""
    opens, refuses = [], []
    if not RS_DATA.is_dir():
        return opens, refuses
    for path in sorted(p for p in RS_DATA.rglob("*") if p.is_file()):
        rel = str(path.relative_to(RS_DATA))
        try:
            with rasterio.open(path):
                opens.append(rel)
        except rasterio.errors.RasterioIOError:
            refuses.append(rel)
    return opens, refuses


RASTERS, NON_RASTERS = _split_real_files()
LANDSAT = "landsat_geotiffs/RGB.byte.tif"
COG = "landsat_geotiffs/cogeo.tif"


def _windows(width: int, height: int):
    """An inside window, one crossing the bottom-right edge, one crossing the top-left corner
    and one entirely outside the scene."""
    w, h = max(1, min(64, width // 2)), max(1, min(48, height // 2))
    return [
        Window(width // 4, height // 5, w, h),
        Window(width - w // 2, height - h // 3, w, h),
        Window(-7, -5, w, h),
        Window(width + 3, 0, 5, 4),
    ]


@pytest.mark.parametrize("rel", RASTERS or ["<no shared data>"])
def test_windowed_read_equals_rasterio(shared_data, rel):
    path = shared_data / "remote_sensing" / rel
    source = RasterSource(path, require_georef=False)
    with rasterio.open(path) as ds:
        fill = ds.nodata if ds.nodata is not None else 0
        band_sets = [None, list(range(ds.count, 0, -1))[:2]]  # all, and a reversed subset
        for window in _windows(ds.width, ds.height):
            for bands in band_sets:
                indexes = bands or list(range(1, ds.count + 1))
                ours = source.read(window, bands)
                theirs = ds.read(indexes, window=window, boundless=True, fill_value=fill)
                np.testing.assert_array_equal(ours.data, theirs, err_msg=f"{rel} {window}")
                masks = ds.read_masks(indexes, window=window, boundless=True)
                rows = np.arange(window.row_off, window.row_off + window.height)
                cols = np.arange(window.col_off, window.col_off + window.width)
                inside = ((rows >= 0) & (rows < ds.height))[:, None] & (
                    (cols >= 0) & (cols < ds.width))[None, :]
                # GDAL's dataset-mask rule: valid if any selected band is valid, inside the scene.
                np.testing.assert_array_equal(ours.valid, masks.any(axis=0) & inside)
                assert ours.transform == ds.window_transform(window)


@pytest.mark.parametrize("rel", NON_RASTERS or ["<no shared data>"])
def test_files_rasterio_refuses_raise_typed_errors(shared_data, rel):
    path = shared_data / "remote_sensing" / rel
    with pytest.raises(RasterReadError) as info:
        RasterSource(path)
    assert str(path) in str(info.value)


def test_sample_meta_is_jsonable_and_georeferenced(shared_data):
    path = shared_data / "remote_sensing" / LANDSAT
    sample = read_window(path, (100, 200, 64, 32), bands=["blue", "red"])
    meta = json.loads(json.dumps(sample["meta"]))
    with rasterio.open(path) as ds:
        window = Window(100, 200, 64, 32)
        assert CRS.from_user_input(meta["crs"]) == ds.crs
        assert meta["transform"] == list(ds.window_transform(window))[:6]
        assert meta["bounds"] == pytest.approx(list(ds.window_bounds(window)))
        expected = ds.read([3, 1], window=window).astype(np.float32) / 255
    assert meta["bands"] == [3, 1]
    assert sample["image"].shape == (2, 32, 64)
    valid = sample["mask"].numpy()
    np.testing.assert_allclose(sample["image"].numpy()[:, valid], expected[:, valid], rtol=1e-6)
    polygon, crs = tile_footprint(meta)
    assert polygon.equals(shapely.box(*meta["bounds"]))
    assert crs == meta["crs"]


def test_non_epsg_crs_travels_as_wkt(shared_data):
    path = shared_data / "remote_sensing" / "landsat_geotiffs" / "goes.tif"
    meta = read_window(path, (0, 0, 8, 8))["meta"]
    with rasterio.open(path) as ds:
        assert meta["crs"].startswith(("PROJCS", "PROJCRS"))
        assert CRS.from_wkt(meta["crs"]) == ds.crs


def test_band_names_from_descriptions(tmp_path):
    path = tmp_path / "named.tif"
    data = np.arange(3 * 20 * 30, dtype=np.uint16).reshape(3, 20, 30)
    with rasterio.open(path, "w", driver="GTiff", width=30, height=20, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(400000, 5000000, 10, 10)) as ds:
        ds.write(data)
        ds.descriptions = ("B04", "B08", "B02")
    source = RasterSource(path)
    assert source.band_indexes(["b08", 1, "B02"]) == [2, 1, 3]
    raw = source.read((2, 3, 5, 4), ["B02", "B04"])
    np.testing.assert_array_equal(raw.data, data[[2, 0], 3:7, 2:7])


def test_scale_offset_and_normalisation_modes(tmp_path, shared_data):
    with rasterio.open(shared_data / "remote_sensing" / LANDSAT) as ds:
        real = ds.read(window=Window(300, 300, 40, 30)).astype(np.uint16) * 16  # 12-bit-like
    path = tmp_path / "scaled.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=3, dtype="uint16",
                       crs="EPSG:32618", transform=from_origin(0, 0, 30, 30)) as ds:
        ds.write(real)
        ds.scales = (2e-5, 2e-5, 1e-4)
        ds.offsets = (-0.1, -0.1, 0.0)
    physical = real.astype(np.float64) * np.array([2e-5, 2e-5, 1e-4])[:, None, None]
    physical += np.array([-0.1, -0.1, 0.0])[:, None, None]
    none = read_window(path, normalize="none")["image"].numpy()
    np.testing.assert_allclose(none, physical, rtol=1e-5, atol=1e-7)
    dtype = read_window(path)["image"].numpy()
    np.testing.assert_allclose(dtype, real / 65535.0, rtol=1e-6)
    stats = read_window(path, normalize={"mean": [0.0, 0.1, 0.2], "std": [2.0, 2.0, 4.0]})
    np.testing.assert_allclose(stats["image"].numpy(),
                               (physical - np.array([0, .1, .2])[:, None, None])
                               / np.array([2, 2, 4.0])[:, None, None], rtol=1e-4, atol=1e-6)
    minmax = read_window(path, bands=[3], normalize={"min": [0.0], "max": [0.2]})
    np.testing.assert_allclose(minmax["image"].numpy()[0], np.clip(physical[2] / 0.2, 0, 1),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        read_window(path, normalize={"mean": [0.0, 1.0]})


def test_int16_float_nan_nodata(tmp_path, shared_data):
    with rasterio.open(shared_data / "remote_sensing" / LANDSAT) as ds:
        real = ds.read(1, window=Window(200, 200, 32, 32)).astype(np.int16) - 100
    ints = tmp_path / "int16.tif"
    with rasterio.open(ints, "w", driver="GTiff", width=32, height=32, count=1, dtype="int16",
                       crs="EPSG:32618", transform=from_origin(0, 0, 1, 1), nodata=-100) as ds:
        ds.write(real, 1)
    sample = read_window(ints)
    np.testing.assert_array_equal(sample["mask"].numpy(), real != -100)
    expected = (real.astype(np.float32) + 32768) / 65535
    valid = real != -100
    np.testing.assert_allclose(sample["image"].numpy()[0][valid], expected[valid], rtol=1e-6)
    assert (sample["image"].numpy()[0][~valid] == 0).all()

    floats = tmp_path / "float.tif"
    values = real.astype(np.float32) * 0.5
    values[real == -100] = np.nan
    with rasterio.open(floats, "w", driver="GTiff", width=32, height=32, count=1,
                       dtype="float32", crs="EPSG:32618", transform=from_origin(0, 0, 1, 1),
                       nodata=float("nan")) as ds:
        ds.write(values, 1)
    sample = read_window(floats, (-4, -4, 40, 40))
    with rasterio.open(floats) as ds:
        masks = ds.read_masks(1, window=Window(-4, -4, 40, 40), boundless=True)
    np.testing.assert_array_equal(sample["mask"].numpy(), masks > 0)
    assert np.isfinite(sample["image"].numpy()).all()
    assert sample["meta"]["nodata"] is None  # NaN is not JSON; the mask carries it


def test_coarser_resolution_reads_the_cog_overview(shared_data):
    path = shared_data / "remote_sensing" / COG
    with rasterio.open(path) as ds:
        native = ds.res[0]
        assert ds.overviews(1)[:2] == [2, 4]
    source = RasterSource(path, res=native * 4)
    assert not source.warped
    assert source.shape == (256, 256)
    raw = source.read((10, 20, 64, 48))
    with rasterio.open(path, overview_level=1) as ovr:  # level 1 = factor 4
        expected = ovr.read(window=Window(10, 20, 64, 48))
        assert raw.transform.almost_equals(ovr.window_transform(Window(10, 20, 64, 48)))
    np.testing.assert_array_equal(raw.data, expected)


def test_reprojection_only_when_needed_and_matches_gdal_reproject(shared_data):
    path = shared_data / "remote_sensing" / LANDSAT
    same = RasterSource(path, crs="EPSG:32618")
    assert not same.warped and same.handle is same._file
    warped = RasterSource(path, crs="EPSG:4326")
    assert warped.warped and warped.crs == CRS.from_epsg(4326)
    window = Window(100, 80, 96, 64)
    raw = warped.read(window)
    with rasterio.open(path) as ds:
        dst = np.zeros((3, 64, 96), dtype=np.uint8)
        reproject(rasterio.band(ds, [1, 2, 3]), dst, dst_transform=raw.transform,
                  dst_crs="EPSG:4326", resampling=Resampling.nearest, dst_nodata=0)
    # Two GDAL warper paths (VRT chunks vs one reproject) approximate the transform per chunk,
    # so a handful of nearest-neighbour picks may shift by one source pixel.
    assert (raw.data == dst).mean() > 0.99
    assert raw.valid.mean() > 0.3


def test_window_from_bounds_in_another_crs(shared_data):
    path = shared_data / "remote_sensing" / LANDSAT
    source = RasterSource(path)
    with rasterio.open(path) as ds:
        win = Window(200, 150, 100, 80)
        left, bottom, right, top = ds.window_bounds(win)
    lonlat = rasterio.warp.transform_bounds("EPSG:32618", "EPSG:4326", left, bottom, right, top)
    back = source.window_from_bounds(lonlat, crs="EPSG:4326")
    # the lon/lat box envelope of a UTM rectangle contains it
    assert back.col_off <= 200 and back.row_off <= 150
    assert back.col_off + back.width >= 300 and back.row_off + back.height >= 230


def test_source_pickles_without_its_handle(shared_data):
    path = shared_data / "remote_sensing" / LANDSAT
    source = RasterSource(path)
    first = source.read((5, 5, 20, 20)).data
    clone = pickle.loads(pickle.dumps(source))
    assert clone._handle is None
    np.testing.assert_array_equal(clone.read((5, 5, 20, 20)).data, first)


def test_typed_errors_name_file_and_reason(tmp_path, shared_data):
    text = tmp_path / "notes.tif"
    text.write_text("this is not a raster\n")
    with pytest.raises(NotARasterError, match="notes.tif"):
        RasterSource(text)

    jpg = next((shared_data / "remote_sensing" / "rsscn7_scenes").rglob("*.jpg"))
    with pytest.raises(NoGeoreferenceError, match="no CRS"):
        RasterSource(jpg)
    RasterSource(jpg, require_georef=False)  # fine when georeferencing is not needed

    source = RasterSource(shared_data / "remote_sensing" / LANDSAT)
    with pytest.raises(BandMismatchError, match="has 3 band"):
        source.read((0, 0, 4, 4), [4])
    with pytest.raises(BandMismatchError, match="no band named 'nir'"):
        source.read((0, 0, 4, 4), ["nir"])

    with pytest.raises(RasterReadError, match="no such file"):
        RasterSource(tmp_path / "missing.tif")


def test_truncated_files(tmp_path, shared_data):
    with rasterio.open(shared_data / "remote_sensing" / LANDSAT) as ds:
        data = ds.read()
        profile = dict(crs=ds.crs, transform=ds.transform)
    cog = tmp_path / "cog.tif"
    # COG layout puts the header first, so a cut file still opens and fails on the lost blocks.
    with rasterio.open(cog, "w", driver="COG", width=data.shape[2], height=data.shape[1],
                       count=3, dtype="uint8", blocksize=256, compress="deflate",
                       **profile) as ds:
        ds.write(data)
    blob = cog.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    source = RasterSource(cut)
    with pytest.raises(TruncatedRasterError, match="cut.tif"):
        source.read((data.shape[2] - 64, data.shape[1] - 64, 64, 64))
    head = tmp_path / "head.tif"
    plain = shared_data / "remote_sensing" / LANDSAT  # its directory sits at the end
    head.write_bytes(plain.read_bytes()[:4096])
    with pytest.raises(TruncatedRasterError, match="head.tif"):
        RasterSource(head)
    assert issubclass(TruncatedRasterError, ReadError)


def test_normalise_rejects_unknown_mode():
    with pytest.raises(ValueError, match="normalize"):
        normalise(np.zeros((1, 2, 2), np.float32), np.ones((2, 2), bool), normalize="zscore")


def test_window_sample_valid_fraction(shared_data):
    source = RasterSource(shared_data / "remote_sensing" / LANDSAT)
    sample = window_sample(source, (-50, 0, 100, 10))
    assert sample["meta"]["valid_fraction"] == pytest.approx(sample["mask"].float().mean())
    assert not sample["mask"][:, :50].any()


# -- facetvlp inspect -------------------------------------------------------------------------------


def test_inspect_summarises_geotiffs_like_rasterio(shared_data, tmp_path):
    import facetvlp.domains.remote_sensing  # noqa: F401  (registers the inspectors)
    from facetvlp.core.inspect import inspect_file

    for rel in (COG, LANDSAT, "landsat_geotiffs/goes.tif"):
        path = shared_data / "remote_sensing" / rel
        summary = json.loads(json.dumps(inspect_file(path)))
        with rasterio.open(path) as ds:
            assert (summary["width"], summary["height"], summary["count"]) == (
                ds.width, ds.height, ds.count)
            assert summary["dtypes"] == list(ds.dtypes)
            assert CRS.from_user_input(summary["crs"]) == ds.crs
            assert summary["bounds"] == pytest.approx(list(ds.bounds))
            assert summary["overviews"] == ds.overviews(1)
            assert summary["nodata"] == ds.nodata
            assert [b["colorinterp"] for b in summary["bands"]] == [c.name for c in ds.colorinterp]
    # a TIFF without a telling suffix is sniffed by its magic bytes
    bare = tmp_path / "scene_without_suffix"
    bare.write_bytes((shared_data / "remote_sensing" / LANDSAT).read_bytes())
    assert inspect_file(bare)["crs"] == "EPSG:32618"
    lon0, lat0, lon1, lat1 = inspect_file(bare)["bounds_lonlat"]
    assert -80 < lon0 < lon1 < -70 and 20 < lat0 < lat1 < 30  # Landsat scene off Florida/Bahamas


def test_inspect_reports_truncated_files(shared_data, tmp_path):
    import facetvlp.domains.remote_sensing  # noqa: F401
    from facetvlp.core.inspect import inspect_file

    with rasterio.open(shared_data / "remote_sensing" / LANDSAT) as ds:
        data, crs, transform = ds.read(), ds.crs, ds.transform
    cog = tmp_path / "full.tif"
    with rasterio.open(cog, "w", driver="COG", width=data.shape[2], height=data.shape[1],
                       count=3, dtype="uint8", crs=crs, transform=transform,
                       compress="deflate") as ds:
        ds.write(data)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(cog.read_bytes()[:-20000])
    assert inspect_file(cog)["layout"] == "COG"
    with pytest.raises(TruncatedRasterError, match="cut.tif"):
        inspect_file(cut)


@pytest.mark.slow  # the CLI imports every domain (torch, MONAI, Open3D ...) first
def test_facetvlp_inspect_command(shared_data, tmp_path, capsys):
    from facetvlp.cli import main

    path = shared_data / "remote_sensing" / COG
    assert main(["inspect", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["crs"] == "EPSG:3857" and summary["overviews"][:2] == [2, 4]
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    assert main(["inspect", str(text)]) == 2
    assert "notes.tif: not a raster" in capsys.readouterr().err
