"""Point cloud datasets: folder-per-class shapes (ModelNet layout) and LiDAR tiles.

Both return the core sample dict with a fixed number of points per item:
``points`` (N, C) float32 (xyz first), ``text`` (facets from shape knowledge), ``labels``
(multi-hot over ``classes``), ``meta`` (source file, class ...). LiDAR tiles add ``seg`` (N,)
with the per-point class index (-1 for codes outside ``classes``). Shapes can add
``query_targets`` (multi-hot over the attribute vocabulary, see ``attribute_queries``).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS, KNOWLEDGE, build, construct
from facetvlp.core.splits import check_split, select_split

from .readers import ALL_SUFFIXES, LAS_SUFFIXES, PointCloud, read_points
from .transforms import PointAugment, channel_offsets, normalize_unit_sphere, resample, to_z_up

SHAPE_SUFFIXES = (".pcd", ".off", ".ply", ".obj", ".stl", ".npy", ".npz", ".xyz", ".pts")


def _build_knowledge(knowledge: Mapping[str, Any] | Any | None, kind: str):
    if knowledge is None:
        return build(KNOWLEDGE, {"type": "ShapeKnowledge", "kind": kind}, where="knowledge")
    if isinstance(knowledge, Mapping):
        return build(KNOWLEDGE, knowledge, where="knowledge")
    return knowledge


def _build_augment(augment: Mapping[str, Any] | PointAugment | None, channels) -> PointAugment | None:
    if augment is None or isinstance(augment, PointAugment):
        return augment
    kwargs = dict(augment)
    if "normals" in channels:
        kwargs.setdefault("normals_at", channel_offsets(channels)["normals"])
    return construct(PointAugment, kwargs, where="augment")


@DATASETS.register_module()
class ShapeFolderDataset(SampleDataset):
    """``root/<class>/**/<file>`` with one shape per file (ModelNet layout; PCD, OFF, PLY ...).

    classes: class folders to use (default: every folder), in label order. Seen/unseen splits
    for zero-shot work are two datasets over the same root with different ``classes``.
    split: "all", or "train" / "val" by a stable hash of each file's path (``val_fraction``).
    attribute_queries: give every item ``query_targets`` (its class's attributes, multi-hot over
    the knowledge's attribute vocabulary) and expose that vocabulary as ``queries``, for
    QueryLoss training.
    """

    def __init__(
        self,
        root: str,
        classes: Sequence[str] | None = None,
        split: str = "all",
        val_fraction: float = 0.2,
        num_points: int = 1024,
        channels: Sequence[str] = ("xyz",),
        up: str = "z",
        sampling: str = "random",
        mesh_points: int = 8192,
        augment: Mapping[str, Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
        with_image: Mapping[str, Any] | None = None,
        max_per_class: int | None = None,
        attribute_queries: bool = False,
        on_error: str = "raise",
        seed: int = 0,
    ):
        super().__init__(on_error=on_error, seed=seed)
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"ShapeFolderDataset: root {self.root} is not a directory")
        available = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        self.classes = list(classes) if classes is not None else available
        missing = sorted(set(self.classes) - set(available))
        if missing:
            raise ConfigError(f"ShapeFolderDataset: no class folder for {missing} in {self.root}")
        check_split(split)
        self.split, self.num_points, self.channels = split, num_points, tuple(channels)
        self.up, self.sampling, self.mesh_points = up, sampling, mesh_points
        self.augment = _build_augment(augment, self.channels)
        self.knowledge = _build_knowledge(knowledge, "object")
        self.image_options = dict(with_image) if with_image is not None else None
        self.items: list[tuple[Path, int]] = []
        for label, cls in enumerate(self.classes):
            files = sorted(
                p for p in (self.root / cls).rglob("*")
                if p.is_file() and p.suffix.lower() in SHAPE_SUFFIXES
            )
            files = select_split(files, lambda p: p.relative_to(self.root).as_posix(), split,
                                 val_fraction)
            self.items += [(p, label) for p in files[:max_per_class]]
        self._texts = {cls: self.knowledge.sample_texts(cls) for cls in self.classes}
        # QueryLoss: the collate adds the attribute vocabulary to every batch, items their targets
        self.queries = self.knowledge.attribute_vocabulary if attribute_queries else None
        self._targets = {}
        if attribute_queries:
            try:
                self._targets = {cls: torch.tensor(self.knowledge.attribute_targets(cls))
                                 for cls in self.classes}
            except KeyError as err:
                raise ConfigError(f"ShapeFolderDataset(attribute_queries=True): {err.args[0]}") from None

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        cloud = read_points(path, mesh_points=self.mesh_points, seed=self.seed)
        generator = torch.Generator().manual_seed(self.sample_seed(index))
        points = prepare_points(cloud, self.channels, self.num_points, self.up,
                                generator, self.sampling)
        if self.augment is not None:
            points = self.augment(points, generator)
        labels = torch.zeros(len(self.classes))
        labels[label] = 1.0
        cls = self.classes[label]
        sample = {
            "points": points,
            "text": list(self._texts[cls]),
            "labels": labels,
            "meta": {"source": path.relative_to(self.root).as_posix(), "class": cls,
                     "dropped_nonfinite": cloud.dropped_nonfinite},
        }
        if self.queries:
            sample["query_targets"] = self._targets[cls].clone()
        if self.image_options is not None:
            from .rendering import render_training_view

            sample["image"] = render_training_view(points, generator, **self.image_options)
        return sample


def prepare_points(cloud: PointCloud, channels: Sequence[str], num_points: int, up: str,
                   generator: torch.Generator, sampling: str = "random") -> torch.Tensor:
    """Reader output -> (num_points, C) float32: z-up, centred, unit sphere, fixed size."""
    # float64 until centred: raw LiDAR/CAD coordinates lose precision in float32
    points = torch.from_numpy(np.concatenate(
        [cloud.xyz] + [cloud.features((c,)).astype(np.float64) for c in channels if c != "xyz"],
        axis=1,
    ))
    normals_at = channel_offsets(channels).get("normals")
    points = to_z_up(points, up, normals_at)
    points = resample(points, num_points, generator, sampling)
    return normalize_unit_sphere(points).float()


@DATASETS.register_module()
class LidarTileDataset(SampleDataset):
    """Square xy tiles cut from LAS/LAZ files, each with per-point ASPRS classes.

    classes: ASPRS codes in label order; an entry may be a list of codes that form one class
    (e.g. ``[3, 4, 5]`` = vegetation, named after its first code unless ``class_names`` says
    otherwise); points of other codes get ``seg`` -1. The caption
    names the classes covering at least ``caption_min_fraction`` of the tile's points, most
    common first; ``labels`` is the multi-hot of those classes (``labels="present"``) or the
    one-hot of the most common one (``labels="dominant"``, for single-label zero-shot).
    split: "all", or "train" / "val" by a stable hash of (file name, tile). Points are centred on the tile centre (xy) and lowest point (z) and divided by
    half the tile size, so a tile spans [-1, 1] in x and y whatever the file's units;
    ``meta["offset"]`` and ``meta["scale"]`` undo it (file xyz = points * scale + offset), which
    is how a prediction on the sampled points goes back to the file (see writers.py).
    Groups (``group_of``): the tile, as for the split.
    """

    def __init__(
        self,
        files: Sequence[str] | str,
        tile_size: float,
        classes: Sequence[int | Sequence[int]] = (1, 2, 3, 4, 5, 6),
        class_names: Sequence[str] | None = None,
        num_points: int = 2048,
        min_points: int = 64,
        with_intensity: bool = False,
        caption_min_fraction: float = 0.15,
        labels: str = "present",
        split: str = "all",
        val_fraction: float = 0.2,
        augment: Mapping[str, Any] | None = None,
        knowledge: Mapping[str, Any] | None = None,
        cache_files: int = 4,
        on_error: str = "raise",
        seed: int = 0,
    ):
        super().__init__(on_error=on_error, seed=seed)
        self.files = _expand_files(files)
        self.tile_size = float(tile_size)
        self.code_groups = [[int(c)] if np.isscalar(c) else [int(v) for v in c] for c in classes]
        self.codes = [group[0] for group in self.code_groups]
        self.knowledge = _build_knowledge(knowledge, "lidar")
        if class_names is not None and len(class_names) != len(self.code_groups):
            raise ConfigError(f"class_names has {len(class_names)} names for {len(self.code_groups)} classes")
        self.classes = list(class_names) if class_names is not None else [
            self.knowledge.asprs_concept(c) or f"class_{c}" for c in self.codes]
        self.seg_classes = self.classes
        self.num_points, self.min_points = num_points, min_points
        self.with_intensity = with_intensity
        self.caption_min_fraction = caption_min_fraction
        if labels not in ("present", "dominant"):
            raise ConfigError(f"labels must be 'present' or 'dominant', got {labels!r}")
        check_split(split)
        self.label_mode = labels
        self.augment = _build_augment(augment, ("xyz",))
        self._cache: OrderedDict[str, PointCloud] = OrderedDict()
        self._cache_size = cache_files
        self.tiles: list[tuple[str, int, int]] = []
        for path in self.files:
            cloud = self._cloud(path)
            cells = self._cells(cloud)
            keys, counts = np.unique(cells, axis=0, return_counts=True)
            tiles = [(path, int(ix), int(iy))
                     for (ix, iy), n in zip(keys, counts) if n >= min_points]
            tiles = select_split(tiles, lambda t: f"{Path(t[0]).name}#{t[1]}_{t[2]}", split,
                                 val_fraction)
            self.tiles += tiles
        if not self.tiles:
            raise ConfigError(f"LidarTileDataset: no tile with {min_points}+ points (split={split!r}); "
                              "a smaller tile_size gives more tiles")

    def __len__(self) -> int:
        return len(self.tiles)

    def group_of(self, index: int) -> str:
        """The tile (file name and cell), the unit the split draws: one survey file often holds
        the whole area, so a per-file group would make every label fraction all or nothing."""
        path, ix, iy = self.tiles[index]
        return f"{Path(path).name}#{ix}_{iy}"

    def _cloud(self, path: str) -> PointCloud:
        if path not in self._cache:
            cloud = read_points(path)
            if cloud.classification is None:
                from .readers import PointCloudFormatError

                raise PointCloudFormatError(path, "no per-point classification in this file")
            self._cache[path] = cloud
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        self._cache.move_to_end(path)
        return self._cache[path]

    def _cells(self, cloud: PointCloud) -> np.ndarray:
        origin = cloud.xyz[:, :2].min(axis=0)
        return np.floor((cloud.xyz[:, :2] - origin) / self.tile_size).astype(np.int64)

    def load(self, index: int) -> dict[str, Any]:
        path, ix, iy = self.tiles[index]
        cloud = self._cloud(path)
        inside = (self._cells(cloud) == (ix, iy)).all(axis=1)
        tile = cloud.select(inside)
        origin = cloud.xyz[:, :2].min(axis=0)
        centre = origin + (np.array([ix, iy]) + 0.5) * self.tile_size
        offset = np.array([centre[0], centre[1], tile.xyz[:, 2].min()])
        xyz = (tile.xyz - offset) / (self.tile_size / 2)
        columns = [xyz]
        if self.with_intensity:
            intensity = tile.intensity if tile.intensity is not None else np.zeros(len(xyz))
            scale = max(float(cloud.intensity.max()), 1.0) if cloud.intensity is not None else 1.0
            columns.append((intensity / scale)[:, None])
        code_to_label = {code: i for i, group in enumerate(self.code_groups) for code in group}
        point_labels = np.array([code_to_label.get(int(c), -1) for c in tile.classification])
        table = torch.from_numpy(np.concatenate(columns, axis=1))
        generator = torch.Generator().manual_seed(self.sample_seed(index))
        picked = _fixed_size_index(len(table), self.num_points, generator)
        points = table[picked].float()
        seg = torch.from_numpy(point_labels)[picked].long()
        if self.augment is not None:
            points = self.augment(points, generator)
        counts = torch.bincount(seg[seg >= 0], minlength=len(self.classes)).float()
        shares = counts / max(float(counts.sum()), 1.0)
        present = [int(i) for i in torch.argsort(shares, descending=True)
                   if shares[i] >= self.caption_min_fraction]
        if not present:  # every point has a code outside `classes`
            present = [int(shares.argmax())]
        labels = torch.zeros(len(self.classes))
        labels[present if self.label_mode == "present" else present[:1]] = 1.0
        return {
            "points": points,
            "seg": seg,
            "labels": labels,
            "text": self._captions([self.classes[i] for i in present]),
            "meta": {"source": f"{Path(path).name}#tile_{ix}_{iy}", "tile": [ix, iy],
                     "label": self.classes[present[0]], "points_in_tile": int(inside.sum()),
                     "group": self.group_of(index), "offset": offset.tolist(),
                     "scale": self.tile_size / 2},
        }

    def _captions(self, concepts: list[str]) -> list[str]:
        names = [self.knowledge.display_name(c) for c in concepts]
        phrase = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        texts = [t.format(phrase) for t in self.knowledge.templates()]
        texts += self.knowledge.facets(concepts[0]).get("shape", [])
        return texts


def _fixed_size_index(count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    if count >= n:
        return torch.randperm(count, generator=generator)[:n]
    return torch.cat([torch.arange(count), torch.randint(count, (n - count,), generator=generator)])


def _expand_files(files: Sequence[str] | str) -> list[str]:
    """A directory (all LAS/LAZ inside), one file, or a list of files."""
    if isinstance(files, (str, os.PathLike)):
        path = Path(files)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in LAS_SUFFIXES)
            if not found:
                raise ConfigError(f"LidarTileDataset: no .las/.laz files in {path}")
            return found
        files = [str(path)]
    unknown = [f for f in files if Path(f).suffix.lower() not in ALL_SUFFIXES]
    if unknown:
        raise ConfigError(f"LidarTileDataset: not point files: {unknown}")
    return [str(f) for f in files]
