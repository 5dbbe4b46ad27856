"""Folder-per-class scene datasets and the GeoTIFF tile dataset, on real files."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from facetvlp.core.registry import DATASETS, build
from facetvlp.domains.remote_sensing.geotiff import BandMismatchError, tile_footprint
from facetvlp.domains.remote_sensing.samplers import GridTileSampler
from facetvlp.domains.remote_sensing.scene_dataset import GeoTiffTileDataset, SceneFolderDataset

LANDSAT_DIR = "remote_sensing/landsat_geotiffs"


def test_rsscn7_jpegs(shared_data):
    root = shared_data / "remote_sensing" / "rsscn7_scenes"
    dataset = SceneFolderDataset(root, image_size=400)
    assert len(dataset) == 91
    assert dataset.classes == ["grass", "field", "industry", "river lake", "forest", "resident",
                               "parking"]
    counts = torch.stack([dataset[i]["labels"] for i in range(0, 91, 1)]).sum(0)
    assert counts.tolist() == [13.0] * 7
    sample = dataset[40]
    path = root / sample["meta"]["source"]
    assert dataset.classes[int(sample["labels"].argmax())] in sample["text"]
    # GDAL's and Pillow's JPEG decoders may differ by rounding in the IDCT only
    pillow = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    diff = np.abs(sample["image"].numpy() - pillow / 255)
    assert diff.mean() < 1 / 255 and diff.max() <= 12 / 255


def test_resize_happens_in_the_read(shared_data):
    root = shared_data / "remote_sensing" / "rsscn7_scenes"
    dataset = SceneFolderDataset(root, image_size=(96, 128))
    sample = dataset[3]
    assert sample["image"].shape == (3, 96, 128)
    with rasterio.open(root / sample["meta"]["source"]) as ds:
        expected = ds.read(out_shape=(3, 96, 128), resampling=Resampling.bilinear) / 255
    np.testing.assert_allclose(sample["image"].numpy(), expected, atol=1e-6)


def _write(path, data, **profile):
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = data.shape
    with rasterio.open(path, "w", width=width, height=height, count=count,
                       dtype=data.dtype.name, **profile) as ds:
        ds.write(data)


def test_eurosat_style_multispectral_tiff_and_png(tmp_path, shared_data):
    with rasterio.open(shared_data / LANDSAT_DIR / "RGB.byte.tif") as ds:
        real = ds.read(window=Window(300, 300, 64, 64)).astype(np.uint16) * 40
    bands13 = np.concatenate([real] * 4 + [real[:1]])  # 13 bands like Sentinel-2 EuroSAT
    geo = dict(crs="EPSG:32618", transform=from_origin(300000, 4000000, 10, 10))
    _write(tmp_path / "ms" / "AnnualCrop" / "AnnualCrop_1.tif", bands13, driver="GTiff", **geo)
    _write(tmp_path / "ms" / "SeaLake" / "SeaLake_1.tif", bands13[::-1].copy(), driver="GTiff",
           **geo)
    dataset = SceneFolderDataset(tmp_path / "ms", image_size=64, bands=[4, 3, 2, 8])
    assert dataset.classes == ["annual crop", "sea lake"]
    sample = dataset[1]
    assert sample["image"].shape == (4, 64, 64)
    np.testing.assert_allclose(sample["image"].numpy(),
                               bands13[::-1][[3, 2, 1, 7]] / 65535.0, rtol=1e-6)
    assert sample["meta"]["crs"] == "EPSG:32618"  # georeferenced scenes keep their footprint

    rgb = (real[:3] // 40).astype(np.uint8)
    _write(tmp_path / "png" / "tennis_court" / "a.png", rgb, driver="PNG")
    png = SceneFolderDataset(tmp_path / "png", image_size=64)
    np.testing.assert_allclose(png[0]["image"].numpy(), rgb / 255.0, rtol=1e-6)
    assert png.classes == ["tennis court"]


def test_band_count_mismatch_raises_or_skips(tmp_path, shared_data):
    src = shared_data / LANDSAT_DIR
    with rasterio.open(src / "RGB.byte.tif") as ds:
        rgb = ds.read(window=Window(200, 200, 32, 32))
    with rasterio.open(src / "RGBA.byte.tif") as ds:
        rgba = ds.read(window=Window(200, 200, 32, 32))
    _write(tmp_path / "a" / "x" / "1.tif", rgb, driver="GTiff")
    _write(tmp_path / "a" / "x" / "2.tif", rgba, driver="GTiff")
    strict = SceneFolderDataset(tmp_path / "a", image_size=32)
    with pytest.raises(BandMismatchError, match="2.tif"):
        strict[1]
    lenient = SceneFolderDataset(tmp_path / "a", image_size=32, on_error="skip")
    assert lenient[1]["meta"]["source"].endswith("1.tif")  # the next readable item
    assert lenient.skipped == 1


def test_tile_dataset_reads_the_sampler_windows(shared_data):
    scenes = [shared_data / LANDSAT_DIR / "RGB.byte.tif", shared_data / LANDSAT_DIR / "cogeo.tif"]
    sampler = GridTileSampler(scenes, 200, 180)
    dataset = GeoTiffTileDataset(scenes, sampler)
    assert len(dataset) == len(sampler)
    for index in (0, len(dataset) - 1):
        sample = dataset[index]
        tile = sampler[index]
        with rasterio.open(scenes[tile.scene]) as ds:
            window = Window(*tile.window)
            expected = ds.read(window=window, boundless=True) / 255
            assert sample["meta"]["bounds"] == pytest.approx(list(ds.window_bounds(window)))
        np.testing.assert_allclose(sample["image"].numpy(), expected, rtol=1e-6)
        assert sample["meta"]["scene"] == tile.scene
        assert sample["meta"]["tile"]["window"] == list(tile.window)
        polygon, crs = tile_footprint(sample["meta"])
        assert polygon.area == pytest.approx(200 * 200 * abs(
            sample["meta"]["transform"][0] * sample["meta"]["transform"][4]))


def test_tile_dataset_from_config_and_in_dataloader_workers(shared_data):
    folder = shared_data / LANDSAT_DIR
    cfg = dict(type="GeoTiffTileDataset", scenes=[str(folder / "shade.tif"),
                                                   str(folder / "world.byte.tif")],
               sampler=dict(type="RandomTileSampler", size=64, length=12, seed=5))
    dataset = build(DATASETS, cfg, where="test")
    assert isinstance(dataset, GeoTiffTileDataset)
    serial = [dataset[i]["image"] for i in range(12)]
    tiles = [dataset.sampler[i] for i in range(12)]
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2,
                                         collate_fn=_stack_images)
    parallel = torch.cat(list(loader))
    torch.testing.assert_close(parallel, torch.stack(serial))
    dataset.set_epoch(1)  # a new epoch draws new tiles
    assert [dataset.sampler[i] for i in range(12)] != tiles


def _stack_images(samples):
    return torch.stack([s["image"] for s in samples])


def test_tile_dataset_refuses_scenes_with_different_band_counts(shared_data):
    folder = shared_data / LANDSAT_DIR
    scenes = [folder / "RGB.byte.tif", folder / "shade.tif"]
    with pytest.raises(BandMismatchError, match="shade.tif"):
        GeoTiffTileDataset(scenes, dict(type="GridTileSampler", size=128))
    dataset = GeoTiffTileDataset(scenes, dict(type="GridTileSampler", size=128), bands=[1])
    assert {dataset[i]["image"].shape[0] for i in (0, len(dataset) - 1)} == {1}


def test_tile_dataset_on_a_coarser_grid_reads_overviews(shared_data):
    cog = shared_data / LANDSAT_DIR / "cogeo.tif"
    with rasterio.open(cog) as ds:
        native = ds.res[0]
    dataset = GeoTiffTileDataset([cog], dict(type="GridTileSampler", size=128), res=native * 4)
    assert len(dataset) == 4  # the 1024 px scene is 256 px at 4x coarser resolution
    with rasterio.open(cog, overview_level=1) as ovr:
        for index in range(4):
            sample = dataset[index]
            window = Window(*dataset.sampler[index].window)
            np.testing.assert_allclose(sample["image"].numpy(), ovr.read(window=window) / 255,
                                       rtol=1e-6)
            assert sample["meta"]["res"] == pytest.approx([native * 4] * 2)
