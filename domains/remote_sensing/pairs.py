"""Image-caption pairs from GeoTIFF scenes and an OpenStreetMap extract.

Every scene is cut into grid tiles (samplers.GridTileSampler); the OSM objects inside each tile
are described by :class:`OSMCaptioner` in every asked language, and tiles that fail its quality
filters are left out. Building the list reads and clips all of OSM once per CRS, so it is
written to a JSON manifest next to the OSM file (or in ``cache_dir``) and reused. The manifest's
name carries a hash of the inputs' paths, sizes and modification times and of every parameter
that changes the pairs, so touching a scene, editing the extract or asking for another language
builds a fresh one; a stale manifest of the same extract is removed when it is replaced.

Each item is ``image`` (the tile), ``mask`` (valid pixels), ``text`` = the captions as facets
(one per language: any of them is a valid positive, as RS-M-CLIP trains on translated captions),
and ``meta`` with the tile's CRS, transform and bounds, the preset ids named in the caption and
the OSM ids behind them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.registry import DATASETS, construct

from .captions import OSMCaptioner
from .geotiff import RasterSource, crs_to_str, resize_sample, scene_paths, window_sample
from .osm import OSMLayer, check_osm_file, read_osm_layer
from .samplers import GridTileSampler

log = logging.getLogger(__name__)

#: bump when the manifest layout or the captioning changes meaning
MANIFEST_VERSION = 3  # 2: min_valid_fraction counts valid pixels; 3: captions state tag attributes
@DATASETS.register_module()
class OSMCaptionPairs(SampleDataset):
    """Tiles of GeoTIFF scenes paired with captions generated from OSM.

    Args:
        scenes: a folder of rasters, a glob, or a list of paths (any mix of CRSs).
        osm: one or more .osm / .osm.bz2 / .osm.pbf / OSM GeoJSON files.
        tile_size: tile size in pixels of the scene grid; ``stride`` defaults to it.
        languages: caption languages (one facet each).
        image_size: resize tiles to this many pixels (bilinear, antialiased) for the model;
            None keeps the tile size.
        bands, normalize: passed to the raster reader (see geotiff.py).
        default_tags: tags for GeoJSON features that carry none (a file of building outlines).
        captioner: keyword arguments of :class:`OSMCaptioner` (filters, kinds ...).
        min_valid_fraction: drop tiles whose share of valid pixels (in the scene, not nodata or
            masked in the bands read) is below this: they get no caption and no pair.
        cache_dir: where the manifest goes; default next to the (first) OSM file, falling back
            to ``~/.cache/facetvlp/pairs`` when that folder is read-only.
        rebuild: build the manifest even when a current one exists.
        classes: optional ``{class name: [preset ids]}`` for zero-shot evaluation: each tile is
            labelled (one-hot ``labels``) with the class of its most prominent object that has
            one, and tiles with no such object are left out of this dataset.
    """

    def __init__(
        self,
        scenes: str | Sequence[str],
        osm: str | Sequence[str],
        tile_size: int = 256,
        stride: int | None = None,
        languages: Sequence[str] = ("en", "de"),
        image_size: int | None = None,
        bands: Sequence[int | str] | None = None,
        normalize: str | Mapping = "dtype",
        default_tags: Mapping[str, str] | None = None,
        captioner: Mapping[str, Any] | None = None,
        min_valid_fraction: float = 0.5,
        cache_dir: str | None = None,
        rebuild: bool = False,
        classes: Mapping[str, Sequence[str]] | None = None,
        on_error: str = "raise",
    ):
        super().__init__(on_error=on_error)
        self.scene_paths = scene_paths(scenes)
        osm = [osm] if isinstance(osm, (str, os.PathLike)) else osm
        self.osm_paths = [os.fspath(p) for p in osm]
        if not self.scene_paths:
            raise ConfigError("no raster scenes given", key="scenes")
        self.tile_size = int(tile_size)
        self.stride = int(stride or tile_size)
        self.image_size = image_size
        self.bands = list(bands) if bands is not None else None
        self.normalize = normalize
        self.default_tags = dict(default_tags) if default_tags else None
        self.captioner = construct(OSMCaptioner, {"languages": languages, **dict(captioner or {})},
                                   where="captioner")
        self.min_valid_fraction = float(min_valid_fraction)
        self.manifest_path = self._manifest_path(cache_dir)
        self.manifest = self._load_or_build(rebuild)
        self.entries = self.manifest["pairs"]
        self.labels: list[int] | None = None
        if classes:
            self._label_entries(classes)
        self._sources: dict[str, RasterSource] = {}

    def _label_entries(self, classes: Mapping[str, Sequence[str]]) -> None:
        self.classes = list(classes)
        class_of = {pid: k for k, ids in enumerate(classes.values()) for pid in ids}
        kept, labels = [], []
        for entry in self.entries:
            # objects are stored most prominent first
            found = [class_of[o["preset"]] for o in entry["objects"] if o["preset"] in class_of]
            if found:
                kept.append(entry)
                labels.append(found[0])
        self.entries, self.labels = kept, labels

    # -- manifest -----------------------------------------------------------------------------

    def cache_key(self) -> str:
        """Hash of the inputs (path, size, mtime) and of every parameter that shapes the pairs."""
        def stat(path: str) -> list:
            try:
                info = os.stat(path)
            except FileNotFoundError:
                # a missing scene is reported (or skipped) by the reader during the build
                return [os.path.abspath(path), None, None]
            return [os.path.abspath(path), info.st_size, info.st_mtime_ns]

        key = {
            "version": MANIFEST_VERSION,
            "scenes": [stat(p) for p in self.scene_paths],
            "osm": [stat(p) for p in self.osm_paths],
            "tile_size": self.tile_size,
            "stride": self.stride,
            "default_tags": self.default_tags,
            "captioner": self.captioner.settings(),
            "min_valid_fraction": self.min_valid_fraction,
        }
        blob = json.dumps(key, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _manifest_path(self, cache_dir: str | None) -> Path:
        for path in self.osm_paths:
            check_osm_file(path)
        self.key = self.cache_key()
        name = f"{Path(self.osm_paths[0]).name}.pairs-{self.key}.json"
        if cache_dir is not None:
            folder = Path(cache_dir)
        else:
            folder = Path(self.osm_paths[0]).resolve().parent
            if not _writable(folder):
                folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                folder = folder / "facetvlp" / "pairs"
        return folder / name

    def _load_or_build(self, rebuild: bool) -> dict:
        if self.manifest_path.is_file() and not rebuild:
            try:
                with open(self.manifest_path, encoding="utf-8") as handle:
                    manifest = json.load(handle)
                if manifest.get("key") == self.key:
                    return manifest
            except (OSError, json.JSONDecodeError):
                pass  # a damaged cache is rebuilt, never trusted
        manifest = self.build_manifest()
        self._write(manifest)
        return manifest

    def build_manifest(self) -> dict:
        layers = [read_osm_layer(p, **self._osm_kwargs(p)) for p in self.osm_paths]
        merged = OSMLayer([f for layer in layers for f in layer], layers[0].crs, self.osm_paths[0])
        sources, scene_paths, skipped_scenes = [], [], []
        for path in self.scene_paths:
            try:
                sources.append(RasterSource(path, require_georef=True))
                scene_paths.append(path)
            except ReadError as exc:
                if self.on_error == "raise":
                    raise
                log.warning("skipping scene: %s", exc)
                skipped_scenes.append(str(exc))
        by_crs: dict[str, OSMLayer] = {}
        pairs = []
        sampler = GridTileSampler(sources, self.tile_size, self.stride)
        for tile in sampler:
            source = sources[tile.scene]
            crs = crs_to_str(source.crs)
            if crs not in by_crs:
                by_crs[crs] = merged.to_crs(source.crs)
            col, row, width, height = tile.window
            if self._valid_fraction(source, tile.window) < self.min_valid_fraction:
                continue
            transform = source.window_transform(tile.window)
            description = self.captioner.describe_tile(by_crs[crs], transform, width, height)
            if description is None:
                continue
            pairs.append({
                "scene": scene_paths[tile.scene],
                "window": [col, row, width, height],
                "captions": self.captioner.captions(description),
                "objects": [
                    {
                        "preset": g.preset.id,
                        "kind": g.kind,
                        "count": g.count,
                        "coverage": round(g.coverage, 6),
                        "span": round(g.span, 6),
                        "refs": g.refs,
                    }
                    for g in description.groups
                ],
            })
        for source in sources:
            source.close()
        return {
            "key": self.key,
            "version": MANIFEST_VERSION,
            "scenes": self.scene_paths,
            "osm": self.osm_paths,
            "osm_unassembled_areas": sum(layer.unassembled for layer in layers),
            "skipped_scenes": skipped_scenes,
            "tiles_considered": len(sampler),
            "pairs": pairs,
        }

    def _write(self, manifest: dict) -> None:
        folder = self.manifest_path.parent
        folder.mkdir(parents=True, exist_ok=True)
        prefix = self.manifest_path.name.rsplit("-", 1)[0] + "-"
        # write then rename: a reader never sees half a manifest
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, ensure_ascii=False)
        os.replace(tmp, self.manifest_path)
        for stale in folder.glob(prefix + "*.json"):
            if stale != self.manifest_path:
                stale.unlink(missing_ok=True)

    def _osm_kwargs(self, path: str) -> dict:
        is_geojson = path.lower().endswith((".geojson", ".json"))
        return {"default_tags": self.default_tags} if is_geojson and self.default_tags else {}

    def _valid_fraction(self, source: RasterSource, window: Sequence[int]) -> float:
        """The fraction of the tile's pixels that hold data: inside the scene and not nodata (or
        masked) in the bands the dataset reads. A tile of nodata is no picture of its OSM objects."""
        return float(source.read(window, bands=self.bands).valid.mean())

    # -- items ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, index: int) -> dict[str, Any]:
        entry = self.entries[index]
        scene = entry["scene"]
        if scene not in self._sources:
            self._sources[scene] = RasterSource(scene, require_georef=True)
        sample = window_sample(self._sources[scene], entry["window"], self.bands, self.normalize)
        if self.image_size is not None:
            # the meta follows the resize, so outputs written from it land on the right ground
            sample = resize_sample(sample, (self.image_size, self.image_size))
        sample["text"] = [entry["captions"][lang] for lang in self.captioner.languages]
        sample["meta"]["osm_presets"] = [o["preset"] for o in entry["objects"]]
        sample["meta"]["osm_refs"] = sorted({r for o in entry["objects"] for r in o["refs"]})
        sample["meta"]["languages"] = list(self.captioner.languages)
        if self.labels is not None:
            sample["labels"] = F.one_hot(torch.tensor(self.labels[index]), len(self.classes)).float()
        return sample

    def captions(self, index: int) -> dict[str, str]:
        return dict(self.entries[index]["captions"])

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_sources"] = {}  # rasterio handles stay per process
        return state


def _writable(folder: Path) -> bool:
    """Whether we may put a manifest in ``folder``: the OS allows it and the folder is not
    marked read-only (root passes the access check even on a folder shared read-only)."""
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
