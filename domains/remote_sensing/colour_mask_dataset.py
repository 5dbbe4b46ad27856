"""Segmentation from images with colour-coded masks (no georeference): each class is a colour.

Layout: ``root/<area>/<image_dir>/<name>.<jpg|png|tif>`` with ``root/<area>/<mask_dir>/<name>.png``
(the Dubai "Semantic segmentation of aerial imagery" set: areas ``Tile 1`` ... ``Tile 8``, each one
contiguous scene cut into parts). Masks are read as RGB (palette masks are converted); a pixel
whose colour is none of ``colours`` (a stray anti-aliased or black pixel) or is listed in
``ignore_colours`` gets -1.

Items are resized to ``image_size`` square (bilinear image, nearest mask: the aspect is not kept,
these parts are not georeferenced). Groups are the areas: parts of one area are neighbours, so a
split by area keeps the validation ground unseen.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.images import read_image_tensor, read_pil
from facetvlp.core.registry import DATASETS
from facetvlp.core.splits import check_split, select_split

from .geotiff import RasterReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

#: The Dubai set's class colours as they are in its mask PNGs (its classes.json lists other
#: colours; these were checked against the images, see the data's PROVENANCE).
DUBAI_COLOURS = {
    "water": "#E2A929",
    "land": "#8429F6",
    "road": "#6EC1E4",
    "building": "#3C1098",
    "vegetation": "#FEDD3A",
}
DUBAI_IGNORE = ("#9B9B9B",)  # "Unlabeled"


def _rgb(colour: str | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(colour, str):
        text = colour.lstrip("#")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    return tuple(int(c) for c in colour)


def decode_colour_mask(rgb: np.ndarray, colours: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) int64 index of each pixel's colour in ``colours``, -1 for others."""
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    out = np.full(packed.shape, -1, dtype=np.int64)
    for index, (r, g, b) in enumerate(colours):
        out[packed == ((r << 16) | (g << 8) | b)] = index
    return out


@DATASETS.register_module()
class ColourMaskDataset(SampleDataset):
    """Image / colour-mask pairs (see the module docstring).

    Args:
        root: folder of areas. colours: ``{class name: "#RRGGBB" or (r, g, b)}`` in class order
            (default: the Dubai set's five classes). ignore_colours: colours meaning "unlabelled".
        image_dir, mask_dir: folder names inside each area.
        image_size: square output side. split/val_fraction/split_seed: by area. limit: keep this
            many items (seeded shuffle).
    """

    def __init__(self, root: str | os.PathLike, colours: Mapping[str, Any] | None = None,
                 ignore_colours: Sequence[Any] = DUBAI_IGNORE, image_dir: str = "images",
                 mask_dir: str = "masks", image_size: int = 256, split: str = "all",
                 val_fraction: float = 0.25, split_seed: int = 0, limit: int | None = None,
                 mean: Sequence[float] = (0.485, 0.456, 0.406), std: Sequence[float] = (0.229, 0.224, 0.225),
                 on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        check_split(split)
        colours = dict(colours or DUBAI_COLOURS)
        self.seg_classes = list(colours)
        self.classes = []
        self.colours = [_rgb(c) for c in colours.values()]
        ignored = {_rgb(c) for c in ignore_colours}
        if ignored & set(self.colours):
            raise ConfigError("a colour is both a class and ignored")
        self.root = Path(root)
        if not self.root.is_dir():
            raise ConfigError(f"ColourMaskDataset: {self.root} is not a folder")
        items = []
        for area in sorted(p for p in self.root.iterdir() if (p / image_dir).is_dir()):
            for image in sorted((area / image_dir).iterdir()):
                mask = area / mask_dir / (image.stem + ".png")
                if image.suffix.lower() in IMAGE_SUFFIXES and mask.is_file():
                    items.append((area.name, image, mask))
        items = select_split(items, lambda it: it[0], split, val_fraction, split_seed)
        if limit is not None and limit < len(items):
            random.Random(split_seed).shuffle(items)
            items = sorted(items[:limit])
        if not items:
            raise ConfigError(f"ColourMaskDataset: no {image_dir}/{mask_dir} pairs under {self.root} (split={split!r})")
        self.items = items
        self.image_size = int(image_size)
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, index: int) -> str:
        return self.items[index][0]

    def load(self, index: int) -> dict[str, Any]:
        area, image_path, mask_path = self.items[index]
        image = read_image_tensor(image_path, RasterReadError, "RGB")
        mask = read_pil(mask_path, RasterReadError, "RGB")
        if image.shape[1:] != mask.shape[:2]:
            raise RasterReadError(mask_path, f"mask {mask.shape[:2]} vs image {tuple(image.shape[1:])}")
        seg = decode_colour_mask(mask, self.colours)
        size = (self.image_size, self.image_size)
        image_t = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                                align_corners=False)[0]
        seg_t = F.interpolate(torch.from_numpy(seg + 1)[None, None].float(), size=size,
                              mode="nearest-exact")[0, 0].long() - 1
        return {
            "image": ((image_t - self.mean) / self.std).float(),
            "seg": seg_t,
            "meta": {"source": f"{area}/{image_path.name}", "group": area,
                     "original_shape": list(image.shape[:2])},
        }
