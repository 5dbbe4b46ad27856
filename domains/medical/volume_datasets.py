"""3D segmentation datasets: CT/MR volumes with label maps.

- :class:`NiftiSegDataset`: image + label NIfTI pairs, loaded with MONAI (``LoadImaged`` with the
  nibabel reader) and both turned to RAS with ``Orientationd``, so a label map stored in another
  axis order still lands on its image; the two grids must then agree.
- :class:`DicomSegDataset`: a DICOM series folder (or one image) + a DICOM-SEG on it, read with
  :func:`.dicom_series.read_dicom_series` and :func:`.dicom_seg.read_dicom_seg` (same slice order).

Both give ``image`` (1, D, H, W) float32 (``intensity_range`` clipped and scaled to [0, 1]: HU
for CT), ``seg`` (D, H, W) int64 indices into ``seg_classes`` (``seg_classes[0]`` is the
background; label values or segments not asked for are background too), optionally resized to
``spatial_size`` (trilinear / nearest), then ``transforms`` (MONAI dict transforms on
``image``/``seg``, seeded per (seed, epoch, index): random crops, flips ...). ``meta``: source
name, group, spacing (D, H, W mm, of the output grid), original shape. D runs along the slices, H along the rows, W
along the columns.

Groups: one volume per patient is assumed unless an item names its ``group``; for DICOM the
default group is a salted key of the PatientID, never the ID. ``meta`` names files and groups by
salted keys only (``facetvlp locate`` finds a file from its key).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.privacy import file_key
from facetvlp.core.registry import DATASETS, TRANSFORMS, build
from facetvlp.core.splits import check_split, select_split

from .dicom_seg import read_dicom_seg, segment_name_key, source_datasets
from .dicom_series import read_dicom_series
from .phi import pseudonymous_key


class VolumeLabelError(ReadError):
    """An image and its label map that cannot be paired (different grids, unreadable files);
    named by file key, as every medical read error."""

    phi_paths = True


class _VolumeSegDataset(SampleDataset):
    """Shared item handling, split, intensity, resizing and transforms of the volume datasets."""

    phi_paths = True  # errors name files by key; a dumped config redacts the item paths

    def __init__(self, items: Sequence[Mapping[str, Any]], seg_classes: Sequence[str],
                 intensity_range: Sequence[float] | None = (-1000.0, 1000.0),
                 spatial_size: Sequence[int] | None = None, split: str = "all",
                 val_fraction: float = 0.2, split_seed: int = 0, transforms: Sequence[Any] = (),
                 on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        check_split(split)
        if len(seg_classes) < 2:
            raise ConfigError(f"seg_classes needs a background and at least one class, got {seg_classes}")
        self.seg_classes = list(seg_classes)
        self.classes = []
        self.intensity_range = None if intensity_range is None else tuple(float(v) for v in intensity_range)
        self.spatial_size = None if spatial_size is None else tuple(int(s) for s in spatial_size)
        self.transforms = [build(TRANSFORMS, t, where="dataset.transforms") if isinstance(t, dict) else t
                           for t in transforms]
        items = [dict(item) for item in items]
        items = select_split(items, self._group, split, val_fraction, split_seed)
        if not items:
            raise ConfigError(f"{type(self).__name__}: no items (split={split!r})")
        self.items = items

    def _group(self, item: Mapping[str, Any]) -> str:
        return str(item.get("group") or Path(item["image"]).name)

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, index: int) -> str:
        return self._group(self.items[index])

    def _finish(self, index: int, image: np.ndarray, seg: np.ndarray, meta: dict) -> dict[str, Any]:
        """(D, H, W) intensities and class indices -> the sample dict."""
        image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
        if self.intensity_range is not None:
            low, high = self.intensity_range
            image_t = ((image_t.clamp(low, high) - low) / (high - low)).float()
        seg_t = torch.from_numpy(np.ascontiguousarray(seg)).long()
        meta["original_shape"] = list(seg_t.shape)
        if self.spatial_size is not None and tuple(seg_t.shape) != self.spatial_size:
            image_t = F.interpolate(image_t[None], size=self.spatial_size, mode="trilinear",
                                    align_corners=False)[0]
            seg_t = F.interpolate((seg_t + 1)[None, None].float(), size=self.spatial_size,
                                  mode="nearest-exact")[0, 0].long() - 1
            if meta.get("spacing"):  # the same extent in fewer (or more) voxels
                meta["spacing"] = [float(s) * o / n for s, o, n in
                                   zip(meta["spacing"], meta["original_shape"], self.spatial_size)]
        sample = {"image": image_t, "seg": seg_t, "meta": meta}
        for transform in self.transforms:
            if hasattr(transform, "set_random_state"):
                transform.set_random_state(seed=self.sample_seed(index))
            sample = transform(sample)
        sample["image"] = torch.as_tensor(sample["image"]).as_subclass(torch.Tensor).float()
        seg_out = torch.as_tensor(sample["seg"]).as_subclass(torch.Tensor)
        sample["seg"] = (seg_out[0] if seg_out.ndim == 4 else seg_out).round().long()
        return sample


@DATASETS.register_module()
class NiftiSegDataset(_VolumeSegDataset):
    """Image + label-map NIfTI pairs (any format MONAI's nibabel reader opens).

    Args:
        items: ``[dict(image=path, label=path, group=optional), ...]``.
        seg_classes: class names, background first.
        label_values: ``{class name: value or [values]}`` in the label files for every class but
            the background, e.g. TotalSegmentator ``dict(liver=5, spleen=1)``.
        intensity_range, spatial_size, split, transforms: see the module docstring.
    """

    def __init__(self, items: Sequence[Mapping[str, Any]], seg_classes: Sequence[str],
                 label_values: Mapping[str, int | Sequence[int]], **kwargs: Any):
        super().__init__(items, seg_classes, **kwargs)
        missing = [c for c in self.seg_classes[1:] if c not in label_values]
        if missing:
            raise ConfigError(f"NiftiSegDataset: label_values has no value for {missing}")
        self.lookup = {int(v): i for i, name in enumerate(self.seg_classes[1:], start=1)
                       for v in np.atleast_1d(label_values[name])}
        from monai.transforms import Compose, LoadImaged, Orientationd

        self.loader = Compose([
            LoadImaged(keys=["image", "label"], reader="NibabelReader", ensure_channel_first=True,
                       image_only=True),
            Orientationd(keys=["image", "label"], axcodes="RAS"),
        ])

    def load(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        try:
            loaded = self.loader({"image": os.fspath(item["image"]), "label": os.fspath(item["label"])})
        except RuntimeError as exc:  # MONAI wraps reader errors
            raise VolumeLabelError(item["image"], f"cannot load the image/label pair ({exc.__cause__ or exc})") from None
        image, label = loaded["image"], loaded["label"]
        if image.shape != label.shape or not torch.allclose(image.affine, label.affine, atol=1e-3):
            raise VolumeLabelError(item["label"], f"label grid {tuple(label.shape[1:])} does not match "
                                   f"its image {tuple(image.shape[1:])} (shape or affine)")
        # MONAI arrays are (x, y, z) after RAS orientation; ours are (slices, rows, columns)
        volume = image[0].numpy().transpose(2, 1, 0)
        values = label[0].numpy().transpose(2, 1, 0).round().astype(np.int64)
        seg = np.zeros(values.shape, dtype=np.int64)
        for value, class_index in self.lookup.items():
            seg[values == value] = class_index
        zooms = [float(v) for v in np.asarray(image.pixdim)][::-1]
        meta = {"source": "file:" + file_key(item["image"]),
                "group": pseudonymous_key(self.group_of(index), "group"), "spacing": zooms,
                "orientation": "RAS"}
        return self._finish(index, volume, seg, meta)


@DATASETS.register_module()
class DicomSegDataset(_VolumeSegDataset):
    """DICOM images + their DICOM-SEG (see the module docstring).

    Args:
        items: ``[dict(image=series folder or image file, seg=DICOM-SEG file, group=optional)]``.
        seg_classes: class names, background first; a segment belongs to the class whose name
            equals its SegmentLabel (case and spaces ignored); other segments are background.
        A single image gives a one-slice volume (1, 1, H, W).
    """

    def load(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        source = Path(item["image"])
        if source.is_dir():
            volume = read_dicom_series(source)
            array, dicom_meta = volume.array, volume.meta
        else:
            from .dicom_read import read_dicom

            image = read_dicom(source, window=None, frame="first")
            array, dicom_meta = image.array[None], image.meta
        labels = read_dicom_seg(item["seg"], source)
        segments = labels.labels if labels.labels.ndim == 3 else labels.labels[None]
        if segments.shape != array.shape:
            raise VolumeLabelError(item["seg"], f"segmentation {segments.shape} vs images {array.shape}")
        wanted = {segment_name_key(name): i for i, name in enumerate(self.seg_classes)}
        seg = np.zeros(segments.shape, dtype=np.int64)
        for number, name in enumerate(labels.segment_names, start=1):
            class_index = wanted.get(segment_name_key(name), 0)
            seg[segments == number] = class_index
        spacing = dicom_meta.get("spacing")
        meta = {"source": f"dicom:{dicom_meta.get('series_key')}", "group": self.group_of(index),
                "spacing": spacing, "modality": dicom_meta.get("modality")}
        return self._finish(index, array, seg, meta)

    def _group(self, item: Mapping[str, Any]) -> str:
        """The item's ``group``, else a salted one-way key of the source's PatientID (of its
        StudyInstanceUID when there is none): patient-level, and never the identifier itself."""
        if item.get("group"):
            return str(item["group"])
        if "_group" not in item:
            header = source_datasets(item["image"])[0]
            patient = header.get("PatientID")
            item["_group"] = (pseudonymous_key(str(patient), "patient") if patient
                              else pseudonymous_key(header.get("StudyInstanceUID"), "study"))
        return item["_group"]
