"""Two raster-reading rules on the bundled real New Brunswick chip: a tile of nodata gets no OSM
caption (valid pixels counted with rasterio's own masks), and a coarsening read averages the
pixels it covers, as rasterio does with Resampling.average, instead of picking one of them."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from facetvlp.domains.remote_sensing.demo import CHIPS, DATA, LANDCOVER
from facetvlp.domains.remote_sensing.geotiff import RasterSource
from facetvlp.domains.remote_sensing.pairs import OSMCaptionPairs

CHIP = DATA / CHIPS[1]


def _chip_with_nodata_left_half(target) -> None:
    """The real chip, declared nodata=0, with its left half blanked to nodata."""
    with rasterio.open(CHIP) as ds:
        profile, data = ds.profile, ds.read()
    data[:, :, : data.shape[2] // 2] = 0
    data[data == 0] = 0  # (0 already meant black; it now means "no data")
    profile.update(nodata=0)
    with rasterio.open(target, "w", **profile) as out:
        out.write(data)


def test_tiles_below_the_valid_pixel_threshold_get_no_caption(tmp_path):
    scene = tmp_path / "half_nodata.tif"
    _chip_with_nodata_left_half(scene)
    args = dict(tile_size=64, stride=32, languages=["en"], cache_dir=str(tmp_path / "cache"))
    full = OSMCaptionPairs([str(CHIP)], str(DATA / LANDCOVER), **args)
    half = OSMCaptionPairs([str(scene)], str(DATA / LANDCOVER), **args)
    with rasterio.open(scene) as ds:
        def valid_fraction(window):
            return (ds.read_masks(1, window=Window(*window)) > 0).mean()

        kept = {tuple(e["window"]) for e in half.entries}
        assert kept and all(valid_fraction(w) >= 0.5 for w in kept)
        # every tile the untouched chip captions is kept exactly when enough of it is still data
        for entry in full.entries:
            window = tuple(entry["window"])
            assert (window in kept) == (valid_fraction(window) >= 0.5), window
    assert len(kept) < len(full.entries)  # the blanked tiles are gone


def test_coarsening_reads_average_like_rasterio_and_do_not_alias():
    with rasterio.open(CHIP) as ds:
        native = abs(ds.transform.a)
        rows, cols = int(round(ds.height / 4)), int(round(ds.width / 4))
        covered = Window(0, 0, cols * 4, rows * 4)  # the coarse grid spans whole 4x4 blocks
        average = ds.read(window=covered, out_shape=(ds.count, rows, cols), resampling=Resampling.average)
        nearest = ds.read(window=covered, out_shape=(ds.count, rows, cols), resampling=Resampling.nearest)
    coarse = RasterSource(CHIP, res=4 * native).read()
    assert coarse.data.shape == average.shape
    np.testing.assert_array_equal(coarse.data, average)
    assert np.abs(average.astype(int) - nearest).mean() > 1.0  # nearest would differ a lot
    # asked for by name, nearest is still there
    np.testing.assert_array_equal(RasterSource(CHIP, res=4 * native, resampling="nearest").read().data, nearest)
    # at the native grid nothing is resampled
    with rasterio.open(CHIP) as ds:
        np.testing.assert_array_equal(RasterSource(CHIP).read().data, ds.read())


def test_coarsening_a_reprojection_averages_like_rasterio_warped_vrt():
    with rasterio.open(CHIP) as ds:
        source = RasterSource(CHIP, crs="EPSG:32619", res=8.0)
        assert source.warped
        transform, width, height = source._vrt_grid
        with WarpedVRT(ds, crs="EPSG:32619", transform=transform, width=width, height=height,
                       resampling=Resampling.average, add_alpha=True) as vrt:
            reference = vrt.read(indexes=list(range(1, ds.count + 1)))
    np.testing.assert_array_equal(source.read().data, reference)


@pytest.mark.parametrize("factor", [2, 3])
def test_window_sample_out_shape_smaller_than_the_window_averages(factor):
    with rasterio.open(CHIP) as ds:
        window = Window(16, 24, 96, 96)
        reference = ds.read(window=window, out_shape=(ds.count, 96 // factor, 96 // factor),
                            resampling=Resampling.average)
    ours = RasterSource(CHIP).read(window, out_shape=(96 // factor, 96 // factor)).data
    np.testing.assert_array_equal(ours, reference)
