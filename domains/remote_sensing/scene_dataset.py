"""Remote-sensing datasets: folder-per-class scene collections, and tiles cut from GeoTIFF scenes.

- :class:`SceneFolderDataset`: ``root/<class>/<image>`` as laid out by EuroSAT (RGB JPG or
  13-band TIFF), UC Merced (TIFF), RESISC45 (JPG), RSSCN7 (JPG), or any PNG/JPG/TIFF mix. Every
  image is read with rasterio (GDAL), resized to ``image_size`` in the read itself, and gets a
  one-hot label and a caption naming its class.
- :class:`GeoTiffTileDataset`: scenes + a sampler from samplers.py. Each item is one tile with its
  validity mask and ``meta`` (crs, transform, bounds, window, scene ...); use
  ``geotiff.tile_footprint(sample["meta"])`` for the tile's ground polygon.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS

from .geotiff import BandMismatchError, BandSpec, RasterSource, scene_paths, window_sample
from .knowledge import normalise_class_name
from .samplers import GridTileSampler, RandomTileSampler, as_sources

SCENE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@DATASETS.register_module()
class SceneFolderDataset(SampleDataset):
    """Folder-per-class scene classification images as samples.

    Args:
        root: folder holding one sub-folder per class.
        image_size: output size (int or (height, width)); the resize happens in the GDAL read
            (bilinear by default), so large scenes are never decoded at full size when
            they have overviews (JPEG DCT scaling, TIFF overviews).
        bands: band indexes / names to keep (default: all bands of the first image). Every image
            must end up with the same number of bands, else :class:`BandMismatchError`.
        normalize: see geotiff.py (default "dtype": uint8 / 255, uint16 / 65535 ...).
        class_names: {folder: readable name}; default :func:`.knowledge.normalise_class_name`.
        template: caption for each image, formatted with the class name.
    """

    def __init__(self, root: str | os.PathLike, image_size: int | Sequence[int] = 224,
                 bands: Sequence[BandSpec] | None = None, normalize: str | Mapping = "dtype",
                 class_names: Mapping[str, str] | None = None,
                 template: str = "a satellite image of {}.", resampling: str = "bilinear",
                 suffixes: Sequence[str] = SCENE_SUFFIXES, on_error: str = "raise",
                 seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"SceneFolderDataset: root {self.root} is not a folder")
        self.size = (int(image_size), int(image_size)) if isinstance(image_size, int) else (
            int(image_size[0]), int(image_size[1]))
        self.bands, self.normalize = bands, normalize
        self.template, self.resampling = template, resampling
        self.folders = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        names = dict(class_names or {})
        self.classes = [names.get(f, normalise_class_name(f)) for f in self.folders]
        wanted = tuple(s.lower() for s in suffixes)
        self.items = [(path, label) for label, folder in enumerate(self.folders)
                      for path in sorted((self.root / folder).iterdir())
                      if path.is_file() and path.name.lower().endswith(wanted)]
        if not self.items:
            raise ConfigError(f"SceneFolderDataset: no {'/'.join(wanted)} images in class "
                              f"folders under {self.root}")
        first = RasterSource(self.items[0][0], require_georef=False)
        self.channels = len(first.band_indexes(bands))
        first.close()

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        source = RasterSource(path, require_georef=False, resampling=self.resampling)
        try:
            indexes = source.band_indexes(self.bands)
            if len(indexes) != self.channels:
                raise BandMismatchError(path, f"{len(indexes)} band(s) where the dataset has "
                                        f"{self.channels} (from {self.items[0][0].name})")
            height, width = source.shape
            sample = window_sample(source, None, indexes, self.normalize, out_shape=self.size)
        finally:
            source.close()
        labels = torch.zeros(len(self.classes))
        labels[label] = 1.0
        name = self.classes[label]
        meta = {"source": str(path.relative_to(self.root)), "class": name,
                "original_shape": [height, width]}
        if source.crs is not None:  # georeferenced scenes keep their footprint
            meta.update({k: sample["meta"][k] for k in ("crs", "transform", "bounds")})
        return {"image": sample["image"], "text": self.template.format(name), "labels": labels,
                "meta": meta}


SAMPLERS = {"GridTileSampler": GridTileSampler, "RandomTileSampler": RandomTileSampler}


@DATASETS.register_module()
class GeoTiffTileDataset(SampleDataset):
    """Tiles of GeoTIFF scenes, as the sampler cuts them, as sample dicts.

    Args:
        scenes: a folder, a file or a list of files (any mix of CRSs), or RasterSources.
        sampler: a sampler object over the same scenes, or a dict
            ``dict(type="GridTileSampler", size=256, stride=224, roi=..., roi_crs=...)`` /
            ``dict(type="RandomTileSampler", size=256, length=10000, seed=0)``.
        bands, normalize: see geotiff.py; every scene must yield the same number of bands.
        source_kwargs: for :class:`RasterSource` (``res=``, ``crs=``, ``resampling=`` ...).

    ``meta`` of each sample: source, crs, transform, bounds, shape, window, bands, res, nodata,
    valid_fraction, scene (index), tile (window + core). The validity mask is ``sample["mask"]``.
    """

    def __init__(self, scenes, sampler: Mapping[str, Any] | Sequence | None = None,
                 bands: Sequence[BandSpec] | None = None, normalize: str | Mapping = "dtype",
                 on_error: str = "raise", seed: int = 0, **source_kwargs: Any):
        super().__init__(on_error=on_error, seed=seed)
        if sampler is None or isinstance(sampler, Mapping):
            cfg = dict(sampler or {"type": "GridTileSampler", "size": 256})
            kind = cfg.pop("type", "GridTileSampler")
            if kind not in SAMPLERS:
                raise ConfigError(f"GeoTiffTileDataset: unknown sampler type {kind!r}; "
                                  f"one of {', '.join(SAMPLERS)}")
            if kind == "RandomTileSampler":
                cfg.setdefault("seed", seed)
            sources = as_sources(scenes if not isinstance(scenes, (str, os.PathLike))
                                 else scene_paths(scenes), **source_kwargs)
            sampler = SAMPLERS[kind](sources, **cfg)
        self.sampler = sampler
        self.sources: list[RasterSource] = sampler.sources
        self.bands, self.normalize = bands, normalize
        counts = {s.path: len(s.band_indexes(bands)) for s in self.sources}
        if len(set(counts.values())) > 1:
            first = self.sources[0].path
            odd = next(p for p, n in counts.items() if n != counts[first])
            raise BandMismatchError(odd, f"{counts[odd]} band(s) selected where {first} has "
                                    f"{counts[first]}; pass bands= to pick the same bands")

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def load(self, index: int) -> dict[str, Any]:
        tile = self.sampler[index]
        sample = window_sample(self.sources[tile.scene], tile.window, self.bands, self.normalize)
        sample["meta"].update(scene=tile.scene, tile=tile.as_dict())
        return sample

