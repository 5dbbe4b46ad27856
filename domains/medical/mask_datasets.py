"""2D segmentation from image + mask file pairs (chest X-ray lung masks and the like).

Layout: ``root/<image_dir>/<name>.png`` with a same-named mask in each of ``mask_dirs``
(Montgomery/Shenzhen as re-packed at 512 px: one ``masks/`` folder holding both lungs; the
original Montgomery release: ``ManualMask/leftMask`` and ``ManualMask/rightMask``, united here).
A mask pixel is foreground when its value is above ``threshold`` (the 512 px masks are
anti-aliased by their resize; 127 splits them as their publisher did).

Each item: ``image`` (C, S, S) float32 normalised by ``mean``/``std``, ``seg`` (S, S) int64 with
0 background, 1 foreground and -1 on the padding that fitting a non-square image to S x S adds
(longest side to S, aspect kept, padded bottom/right: the geometry of :func:`.transforms.fit_square`).
``meta`` holds the file's salted key (``file:<key>``, as the CXR datasets: file names may carry
identifiers; ``facetvlp locate`` finds the file), a salted key of the patient group and the
original (rows, columns), which is what :func:`.dicom_seg.to_source_grid` needs to bring a
prediction back to the source grid.

Groups: the patient. In both NLM sets one radiograph is one case, named
``<SET>_<case number>_<0 normal | 1 TB>``; the group is ``<SET>_<case number>``, so a split or a
label fraction drawn per group never puts one patient on both sides.

:class:`DicomSeg2DDataset` is the same item for a single-frame radiograph (CR, DX, any 2D DICOM)
with its DICOM-SEG: the image windowed to [0, 1] by its header, the segments read with
highdicom (:func:`.dicom_seg.read_dicom_seg`), both fitted to S x S the same way. Its groups are
salted one-way keys of the PatientID: no identifier reaches ``meta``.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError
from facetvlp.core.images import read_pil
from facetvlp.core.privacy import file_key
from facetvlp.core.registry import DATASETS, TRANSFORMS, build
from facetvlp.core.splits import check_split, select_split

from .datasets import ImageFileError, read_image
from .transforms import fit_square
from .dicom_read import load_dicom_sample, read_header
from .dicom_seg import read_dicom_seg, segment_name_key
from .phi import pseudonymous_key

MASK_SUFFIXES = (".png", ".gif", ".bmp", ".tif", ".tiff")
_CASE_SUFFIX = re.compile(r"_[01]$")  # the NLM sets' normal / TB flag after the case number


def read_binary_mask(path: str | os.PathLike, threshold: int = 127) -> np.ndarray:
    """(H, W) bool: pixels of the (grey or colour) mask above ``threshold``."""
    return read_pil(path, ImageFileError, "L") > threshold


def patient_group(name: str) -> str:
    """``MCUCXR_0001_0.png`` -> ``MCUCXR_0001`` (see the module docstring)."""
    return _CASE_SUFFIX.sub("", Path(name).stem)


def fit_seg(seg: torch.Tensor, size: int) -> torch.Tensor:
    """(H, W) class indices to the :func:`fit_square` grid (nearest); padding becomes -1."""
    shifted = fit_square((seg + 1)[None].float(), size, mode="nearest")[0][0]
    return shifted.round().long() - 1


@DATASETS.register_module()
class MaskPairDataset(SampleDataset):
    """Images with binary masks in parallel folders (see the module docstring).

    Args:
        root: dataset folder. image_dir: images below it. mask_dirs: one or more mask folders
            (their masks are united). seg_classes: names for 0 and 1.
        image_size: side S of the square output. channels: 1 or 3 (grey repeated).
        split: "all" | "train" | "val", by a hash of the patient group (``val_fraction``,
            ``split_seed``). limit: keep this many items (seeded shuffle), for tiny runs.
        transforms: MONAI dict transforms (or TRANSFORMS configs) run on ``image`` in [0, 1]
            and ``seg`` before normalisation, seeded per (seed, epoch, index); pass
            ``mask_keys=("seg",)`` to geometric ones so the mask follows the image.
    """

    #: file names may carry patient identifiers: errors name files by key and a dumped config
    #: redacts this dataset's paths (facetvlp.core.privacy)
    phi_paths = True

    def __init__(self, root: str | os.PathLike, image_dir: str = "cxr",
                 mask_dirs: Sequence[str] = ("masks",),
                 seg_classes: Sequence[str] = ("background", "lung"), image_size: int = 224,
                 channels: int = 1, threshold: int = 127, split: str = "all",
                 val_fraction: float = 0.2, split_seed: int = 0, limit: int | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 transforms: Sequence[Any] = (), on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        check_split(split)
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if len(seg_classes) != 2:
            raise ConfigError(f"seg_classes names background and foreground, got {list(seg_classes)}")
        self.root = Path(root)
        images = self.root / image_dir
        if not images.is_dir():
            raise ConfigError(f"MaskPairDataset: image folder {images} not found")
        self.mask_dirs = [self.root / d for d in ([mask_dirs] if isinstance(mask_dirs, str) else mask_dirs)]
        for folder in self.mask_dirs:
            if not folder.is_dir():
                raise ConfigError(f"MaskPairDataset: mask folder {folder} not found")
        names = sorted(p.name for p in images.iterdir() if p.suffix.lower() in MASK_SUFFIXES)
        # an image without its masks is not a segmentation item: leave it out, say how many
        self.unmatched = [n for n in names if not all((d / n).is_file() for d in self.mask_dirs)]
        names = [n for n in names if n not in set(self.unmatched)]
        names = select_split(names, patient_group, split, val_fraction, split_seed)
        if limit is not None and limit < len(names):
            random.Random(split_seed).shuffle(names)
            names = sorted(names[:limit])
        if not names:
            raise ConfigError(f"MaskPairDataset: no image/mask pairs under {self.root} (split={split!r})")
        self.names, self.image_dir = names, images
        self.seg_classes = list(seg_classes)
        self.classes = []  # no image-level labels
        self.image_size, self.channels, self.threshold = int(image_size), channels, threshold
        self.mean = torch.tensor(mean or ((0.5,) * channels)).view(-1, 1, 1)
        self.std = torch.tensor(std or ((0.25,) * channels)).view(-1, 1, 1)
        self.transforms = [build(TRANSFORMS, t, where="dataset.transforms") if isinstance(t, dict) else t
                           for t in transforms]

    def __len__(self) -> int:
        return len(self.names)

    def group_of(self, index: int) -> str:
        """The patient of item ``index`` (label fractions and splits are drawn per group)."""
        return patient_group(self.names[index])

    def load(self, index: int) -> dict[str, Any]:
        name = self.names[index]
        image, _ = read_image(self.image_dir / name)
        if image.shape[0] != self.channels:
            image = image.mean(0, keepdim=True) if self.channels == 1 else image[:1].expand(3, -1, -1)
        height, width = image.shape[1:]
        foreground = np.zeros((height, width), dtype=bool)
        for folder in self.mask_dirs:
            mask = read_binary_mask(folder / name, self.threshold)
            if mask.shape != (height, width):
                raise ImageFileError(folder / name, f"mask is {mask.shape[1]}x{mask.shape[0]}, "
                                     f"its image {width}x{height}")
            foreground |= mask
        seg = fit_seg(torch.from_numpy(foreground.astype(np.int64)), self.image_size)
        image, _ = fit_square(image, self.image_size)
        sample: dict[str, Any] = {
            "image": image.float(), "seg": seg,
            "meta": {"source": "file:" + file_key(self.image_dir / name),
                     "group": pseudonymous_key(self.group_of(index), "group"),
                     "original_shape": [height, width]},
        }
        for transform in self.transforms:
            if hasattr(transform, "set_random_state"):
                transform.set_random_state(seed=self.sample_seed(index))
            sample = transform(sample)
        image = torch.as_tensor(sample["image"]).as_subclass(torch.Tensor)
        sample["image"] = ((image - self.mean) / self.std).float()
        sample["seg"] = torch.as_tensor(sample["seg"]).as_subclass(torch.Tensor).long()
        return sample


@DATASETS.register_module()
class DicomSeg2DDataset(SampleDataset):
    """Single-frame DICOM images with their DICOM-SEG, as 2D segmentation items.

    Args:
        items: ``[dict(image=DICOM file, seg=DICOM-SEG file, group=optional)]``.
        seg_classes: names, background first; a segment goes to the class whose name equals its
            SegmentLabel (case, spaces and underscores ignored), other segments are background.
        image_size, channels, split, val_fraction, split_seed, mean, std: as MaskPairDataset.
    """

    phi_paths = True  # as MaskPairDataset

    def __init__(self, items: Sequence[dict], seg_classes: Sequence[str], image_size: int = 224,
                 channels: int = 1, split: str = "all", val_fraction: float = 0.2, split_seed: int = 0,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        check_split(split)
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        self.items = [dict(item) for item in items]
        self.items = select_split(self.items, self._group, split, val_fraction, split_seed)
        if not self.items:
            raise ConfigError(f"DicomSeg2DDataset: no items (split={split!r})")
        self.seg_classes, self.classes = list(seg_classes), []
        self.image_size, self.channels = int(image_size), channels
        self.mean = torch.tensor(mean or ((0.5,) * channels)).view(-1, 1, 1)
        self.std = torch.tensor(std or ((0.25,) * channels)).view(-1, 1, 1)

    def _group(self, item: dict) -> str:
        if item.get("group"):
            return str(item["group"])
        if "_group" not in item:
            header = read_header(item["image"], stop_before_pixels=True)
            patient = header.get("PatientID")
            item["_group"] = (pseudonymous_key(str(patient), "patient") if patient
                              else pseudonymous_key(header.get("StudyInstanceUID"), "study"))
        return item["_group"]

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, index: int) -> str:
        return self._group(self.items[index])

    def load(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        loaded = load_dicom_sample(item["image"])
        image, dicom_meta = loaded["image"].clamp(0, 1), loaded["meta"]
        if image.shape[0] != self.channels:
            image = image.mean(0, keepdim=True) if self.channels == 1 else image[:1].expand(3, -1, -1)
        labels = read_dicom_seg(item["seg"], item["image"])
        wanted = {segment_name_key(n): i for i, n in enumerate(self.seg_classes)}
        seg = np.zeros(labels.labels.shape, dtype=np.int64)
        for number, name in enumerate(labels.segment_names, start=1):
            seg[labels.labels == number] = wanted.get(segment_name_key(name), 0)
        height, width = seg.shape
        image, _ = fit_square(image, self.image_size)
        return {
            "image": ((image - self.mean) / self.std).float(),
            "seg": fit_seg(torch.from_numpy(seg), self.image_size),
            "meta": {"source": "file:" + file_key(item["image"]), "group": self.group_of(index),
                     "original_shape": [height, width], "modality": dicom_meta.get("modality")},
        }
