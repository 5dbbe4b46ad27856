"""Per-point part labels in the ShapeNetPart layout used by PointNet++ (``*_v0_normal``).

``root/synsetoffset2category.txt`` lists ``<Category>\\t<synset>``; each shape is
``root/<synset>/<id>.txt`` with one row per point: ``x y z nx ny nz part_id``, where part ids are
global over the 16 categories (Airplane 0-3 ... Table 47-49, the benchmark's standard grouping).

Each item: ``points`` (N, 3 or 6) z-up (ShapeNet is y-up), centred, unit sphere; ``seg`` (N,) the
index of each point's part in ``seg_classes`` (the parts of the chosen categories, in part-id
order, named "<category> part <k>"); ``labels`` one-hot over ``classes`` = the categories (part
segmentation is usually conditioned on the category). Groups: one shape each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS
from facetvlp.core.splits import check_split, select_split

from .datasets import _build_augment
from .readers import PointCloudFormatError
from .transforms import channel_offsets, normalize_unit_sphere, to_z_up

#: ShapeNetPart's global part ids per category (the benchmark's fixed table)
PART_IDS: dict[str, range] = {
    "Airplane": range(0, 4), "Bag": range(4, 6), "Cap": range(6, 8), "Car": range(8, 12),
    "Chair": range(12, 16), "Earphone": range(16, 19), "Guitar": range(19, 22),
    "Knife": range(22, 24), "Lamp": range(24, 28), "Laptop": range(28, 30),
    "Motorbike": range(30, 36), "Mug": range(36, 38), "Pistol": range(38, 41),
    "Rocket": range(41, 44), "Skateboard": range(44, 47), "Table": range(47, 50),
}


def read_part_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(N, 6) float64 xyz + normals and (N,) int64 global part ids of one shape file."""
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise PointCloudFormatError(path, f"not a 'x y z nx ny nz part' table ({exc})") from None
    if table.shape[1] != 7 or len(table) == 0:
        raise PointCloudFormatError(path, f"expected 7 columns per point, got {table.shape}")
    return table[:, :6], table[:, 6].round().astype(np.int64)


@DATASETS.register_module()
class PartSegDataset(SampleDataset):
    """ShapeNetPart-style shapes with per-point part labels (see the module docstring).

    Args:
        root: folder holding ``synsetoffset2category.txt``.
        categories: category names to use (default: every listed category present).
        num_points: points per item (random subset, or repeats when a shape has fewer).
        channels: ("xyz",) or ("xyz", "normals").
        split: "all" | "train" | "val" by a stable hash of the file path (``val_fraction``).
        augment: PointAugment settings (rotation about z, scaling, jitter), seeded per item.
    """

    def __init__(self, root: str | os.PathLike, categories: Sequence[str] | None = None,
                 num_points: int = 2048, channels: Sequence[str] = ("xyz",), split: str = "all",
                 val_fraction: float = 0.2, augment: Mapping[str, Any] | None = None,
                 on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        self.root = Path(root)
        listing = self.root / "synsetoffset2category.txt"
        if not listing.is_file():
            raise ConfigError(f"PartSegDataset: {listing} not found")
        synsets = dict(line.split() for line in listing.read_text().splitlines() if line.strip())
        unknown = sorted(set(categories or ()) - set(synsets))
        if unknown:
            raise ConfigError(f"PartSegDataset: categories {unknown} not in {listing}")
        missing_table = sorted(set(categories or synsets) - set(PART_IDS))
        if missing_table:
            raise ConfigError(f"PartSegDataset: no part table for {missing_table}")
        self.classes = [c for c in (categories or synsets) if (self.root / synsets[c]).is_dir()]
        check_split(split)
        self.part_index = {}
        self.seg_classes = []
        for category in self.classes:
            for k, part in enumerate(PART_IDS[category]):
                self.part_index[part] = len(self.seg_classes)
                self.seg_classes.append(f"{category.lower()} part {k}")
        self.items = []
        for label, category in enumerate(self.classes):
            files = sorted((self.root / synsets[category]).glob("*.txt"))
            files = select_split(files, lambda p: p.relative_to(self.root).as_posix(), split,
                                 val_fraction)
            self.items += [(path, label) for path in files]
        if not self.items:
            raise ConfigError(f"PartSegDataset: no shapes under {self.root} (split={split!r})")
        self.num_points = num_points
        self.channels = tuple(channels)
        if self.channels not in (("xyz",), ("xyz", "normals")):
            raise ConfigError(f"channels must be ('xyz',) or ('xyz', 'normals'), got {channels}")
        self.augment = _build_augment(augment, self.channels)

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, index: int) -> str:
        return str(self.items[index][0].relative_to(self.root))

    def load(self, index: int) -> dict[str, Any]:
        path, label = self.items[index]
        table, parts = read_part_file(path)
        foreign = sorted(set(parts.tolist()) - set(self.part_index))
        if foreign:
            raise PointCloudFormatError(path, f"part ids {foreign} do not belong to {self.classes[label]}")
        seg = torch.tensor([self.part_index[p] for p in parts.tolist()], dtype=torch.int64)
        points = torch.from_numpy(table if "normals" in self.channels else table[:, :3])
        points = to_z_up(points, "y", channel_offsets(self.channels).get("normals"))
        generator = torch.Generator().manual_seed(self.sample_seed(index))
        count = len(points)
        picked = (torch.randperm(count, generator=generator)[:self.num_points] if count >= self.num_points
                  else torch.cat([torch.arange(count), torch.randint(count, (self.num_points - count,), generator=generator)]))
        points = normalize_unit_sphere(points[picked]).float()
        if self.augment is not None:
            points = self.augment(points, generator)
        labels = torch.zeros(len(self.classes))
        labels[label] = 1.0
        category = self.classes[label]
        return {"points": points, "seg": seg[picked], "labels": labels,
                "text": f"a 3D model of a {category.lower()}.",
                "meta": {"source": self.group_of(index), "class": category, "group": self.group_of(index)}}
