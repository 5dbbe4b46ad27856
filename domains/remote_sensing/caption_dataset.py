"""Remote-sensing caption datasets in the two JSON layouts they are published in.

- COCO captions: ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id",
  "caption"}]}`` (RSICD and UCM-captions as converted to COCO).
- Karpathy split files, the layout the RSICD, UCM-captions and Sydney-captions releases use:
  ``{"images": [{"filename", "split", "sentences": [{"raw": ...}]}]}``.

The layout is recognised from the file. Every caption of an image is one facet of its ``text``.
With ``images=None`` the dataset is text-only (the captions of RSICD are often shipped without
its imagery); items then carry only ``text`` and ``meta``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ReadError
from facetvlp.core.images import read_image_tensor
from facetvlp.core.registry import DATASETS

from .geotiff import read_window

# "storagetanks_12.jpg" -> "storagetanks"; RSICD's numeric names ("00917.jpg") carry no class
_CLASS_IN_NAME = re.compile(r"^([A-Za-z][A-Za-z ]*?)_?\d+$")


class CaptionFileError(ReadError):
    """A caption JSON file (or an image it names) cannot be read."""


def read_caption_file(path: str | os.PathLike, split: str | Sequence[str] | None = None) -> list[dict]:
    """``[{"file_name", "image_id", "captions": [...], "split"}]`` from either layout, in file
    order. ``split`` keeps only those Karpathy splits ("train", "val", "test")."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError as exc:
        raise CaptionFileError(path, "no such file") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaptionFileError(path, f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CaptionFileError(path, "no 'images' list: neither COCO captions nor a Karpathy split file")
    if "annotations" in data:
        records = _from_coco(path, data)
    else:
        records = _from_karpathy(path, data)
    if split is not None:
        wanted = {split} if isinstance(split, str) else set(split)
        if any(r["split"] is None for r in records):
            raise CaptionFileError(path, "split= asked for, but the file has no splits (COCO layout)")
        records = [r for r in records if r["split"] in wanted]
    return records


def _from_coco(path: str, data: dict) -> list[dict]:
    by_id: dict[Any, dict] = {}
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise CaptionFileError(path, f"image entry without 'id'/'file_name': {image!r:.80}")
        by_id[image["id"]] = {
            "file_name": image["file_name"], "image_id": image["id"], "captions": [], "split": None,
        }
    for note in data["annotations"]:
        try:
            record = by_id[note["image_id"]]
            caption = note["caption"]
        except (KeyError, TypeError) as exc:
            raise CaptionFileError(path, f"annotation {note!r:.80} names no known image or has "
                                   "no caption") from exc
        record["captions"].append(_clean(caption))
    return [r for r in by_id.values() if r["captions"]]


def _from_karpathy(path: str, data: dict) -> list[dict]:
    records = []
    for number, image in enumerate(data["images"]):
        try:
            name = image.get("filename") or image["file_name"]
            sentences = [_clean(s["raw"]) for s in image["sentences"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise CaptionFileError(path, f"image {number} lacks filename/sentences: {exc}") from exc
        if sentences:
            records.append({
                "file_name": name,
                "image_id": image.get("imgid", number),
                "captions": sentences,
                "split": image.get("split"),
            })
    return records


def _clean(caption: Any) -> str:
    # RSICD captions are tokenised text ("near a viaduct ."): rejoin the final full stop
    text = " ".join(str(caption).split())
    return re.sub(r"\s+([.,;!?])", r"\1", text)


def scene_class(file_name: str) -> str | None:
    """The scene class in an RSICD/UCM file name ("denseresidential_3.jpg"), if there is one."""
    match = _CLASS_IN_NAME.match(Path(file_name).stem)
    return match.group(1).strip() if match else None


@DATASETS.register_module()
class RSCaptionDataset(SampleDataset):
    """Images (optional) with all their captions as facets.

    Args:
        annotations: the caption JSON file (COCO or Karpathy layout).
        images: folder the file names are relative to; None for text-only items.
        split: Karpathy split(s) to keep.
        image_size: images are resized to this square size (bilinear, antialiased).
    """

    def __init__(
        self,
        annotations: str,
        images: str | None = None,
        split: str | Sequence[str] | None = None,
        image_size: int = 224,
        on_error: str = "raise",
    ):
        super().__init__(on_error=on_error)
        self.annotations = os.fspath(annotations)
        self.records = read_caption_file(self.annotations, split)
        self.images = os.fspath(images) if images is not None else None
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        meta = {"file_name": record["file_name"], "image_id": record["image_id"]}
        name_class = scene_class(record["file_name"])
        if name_class is not None:
            meta["scene_class"] = name_class
        sample: dict[str, Any] = {"text": list(record["captions"]), "meta": meta}
        if self.images is not None:
            sample["image"] = self._read_image(os.path.join(self.images, record["file_name"]))
        return sample

    def _read_image(self, path: str) -> torch.Tensor:
        if not os.path.isfile(path):
            raise CaptionFileError(path, "image named in the caption file is missing")
        if path.lower().endswith((".tif", ".tiff")):
            # UCM ships TIFFs; multispectral ones need rasterio rather than PIL
            image = read_window(path, require_georef=False)["image"]
        else:
            image = read_image_tensor(path, CaptionFileError, "RGB")
        if image.shape[-2:] != (self.image_size, self.image_size):
            image = F.interpolate(image[None], size=(self.image_size, self.image_size),
                                  mode="bilinear", antialias=True, align_corners=False)[0]
        return image
