"""Chest X-ray datasets: one base class, one small parser per on-disk layout.

Every layout is parsed once, at construction, into a list of :class:`Record` (image path, report,
positive label names, boxes, an RLE mask). :class:`CXRDataset` turns a record into a sample dict:

* ``image``: (C, H, W) float32, resized with its aspect ratio kept and padded at the bottom/right
  to ``image_size`` square (so boxes only scale), normalised by ``mean``/``std``;
* ``text``: facets from :func:`.knowledge.compose_text` (report sentences and knowledge facets of
  the labels, or report only, or label prompts for the baseline);
* ``labels``: multi-hot over ``classes`` (the multi-positive loss uses it as soft targets);
* ``boxes`` (xyxy pixels of ``image``) with ``box_labels`` (indices into ``classes`` and into
  ``queries``, the class names as texts a grounding head looks for) / ``mask`` when the layout
  has them; ``meta`` with a source id that never holds a path (sources are keyed with the salted
  one-way :func:`facetvlp.core.privacy.file_key`).

A fixed validation split is carried by the data itself: an item is in ``split="val"`` when a
salt-free hash of (``split_seed``, its group) falls under ``val_fraction``
(:mod:`facetvlp.core.splits`, the split every domain uses); the group is the patient when the
layout knows it, so no patient is on both sides.

Layouts here: folder-per-class, CSV/JSONL manifest, IU X-ray. Public label tables (NIH, RSNA,
SIIM, VinDr, CheXpert, MIMIC-CXR) are in :mod:`.label_tables`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from facetvlp.core.data import SampleDataset
from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.images import read_image_tensor
from facetvlp.core.privacy import file_key
from facetvlp.core.registry import DATASETS, KNOWLEDGE, TRANSFORMS, build
from facetvlp.core.splits import check_split, select_split

from .dicom_read import load_dicom_sample
from .knowledge import TRAINING_FACETS, CXRKnowledge, compose_text
from .reports import FINDING_NAMES, iu_mesh_findings
from .transforms import fit_square

log = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff") + DICOM_SUFFIXES
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFileError(ReadError):
    """A PNG/JPEG/TIFF image that cannot be decoded (named by key: folders may name patients)."""

    phi_paths = True


class TableFormatError(ReadError):
    """A label table, manifest or image folder is missing or not in the expected layout (named by
    key like every medical file: an export's folders may be named after patients)."""

    phi_paths = True


@dataclass
class Record:
    path: Path
    labels: tuple[str, ...] = ()
    report: str | None = None
    group: str | None = None  # the patient, when known: keeps the val split patient-disjoint
    boxes: list[tuple[str, float, float, float, float]] = field(default_factory=list)  # label, x0, y0, x1, y1
    box_reference: tuple[int, int] | None = None  # (width, height) the boxes are given in; None = the image's
    mask_rle: list[str] | None = None  # SIIM-style run lengths (union of all rows)


# --- reading files ------------------------------------------------------------------------

def read_image(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, Any]]:
    """(C, H, W) float32 in [0, 1] (C = 1 grey, 3 colour) and safe metadata, for DICOM or a raster image."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        sample = load_dicom_sample(path)
        image = sample["image"]
        if image.ndim == 4:  # defensive: frame axis
            image = image[0]
        return image.clamp(0, 1), dict(sample["meta"])
    tensor = read_image_tensor(path, ImageFileError)
    return tensor, {"modality": None, "rows": int(tensor.shape[1]), "columns": int(tensor.shape[2])}


def open_table(path: str | os.PathLike) -> io.TextIOBase:
    """A text handle on a .csv, .csv.gz or single-member .zip table."""
    path = Path(path)
    if not path.is_file():
        raise TableFormatError(path, "is a directory" if path.is_dir() else "no such file")
    try:
        if path.suffix == ".gz":
            return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
        if path.suffix == ".zip":
            archive = zipfile.ZipFile(path)
            members = [n for n in archive.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise TableFormatError(path, f"expected one table in the zip, found {members}")
            return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8", newline="")
        return open(path, encoding="utf-8", newline="")
    except (OSError, zipfile.BadZipFile) as exc:
        raise TableFormatError(path, f"cannot open ({exc})") from None


def read_csv(path: str | os.PathLike, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows as dicts with stripped header names; a missing column is a TableFormatError."""
    with open_table(path) as handle:
        try:
            reader = csv.DictReader(handle)
            reader.fieldnames = [(name or "").strip() for name in (reader.fieldnames or [])]
            rows = list(reader)
        except (csv.Error, UnicodeDecodeError, EOFError, OSError) as exc:
            raise TableFormatError(path, f"not a readable CSV ({exc})") from None
    missing = [c for c in required if c not in reader.fieldnames]
    if missing:
        raise TableFormatError(path, f"missing column(s) {missing}; found {reader.fieldnames}")
    return rows


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """One JSON object per non-empty line; anything else is a TableFormatError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise TableFormatError(path, "is a directory" if path.is_dir() else "no such file")
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise TableFormatError(path, f"line {number}: not JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise TableFormatError(path, f"line {number}: expected an object")
                    rows.append(row)
    except UnicodeDecodeError as exc:
        raise TableFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return rows


def index_files(root: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    """``{file name: path}`` for every image below ``root`` (layouts nest images in subfolders)."""
    root = Path(root)
    if not root.is_dir():
        raise TableFormatError(root, "image folder not found")
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.lower().endswith(tuple(suffixes)):
                found.setdefault(name, Path(folder) / name)
    return found


def decode_rle(runs: str, width: int, height: int) -> np.ndarray:
    """SIIM-ACR pneumothorax encoding: pairs (gap, length) where each gap counts from the end of
    the previous run, over the pixels in column-major order. "-1" is an empty mask."""
    mask = np.zeros(width * height, dtype=np.uint8)
    values = runs.split()
    if values in ([], ["-1"]):
        return mask.reshape(width, height).T
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise ValueError(f"run-length string has non-integers: {runs[:40]!r}") from None
    if len(numbers) % 2:
        raise ValueError("run-length string has an odd number of values")
    position = 0
    for gap, length in zip(numbers[0::2], numbers[1::2]):
        position += gap
        if position + length > mask.size:
            raise ValueError(f"run ends at pixel {position + length}, beyond a {width}x{height} image")
        mask[position:position + length] = 1
        position += length
    return mask.reshape(width, height).T


# --- the dataset ----------------------------------------------------------------------------

def _build_knowledge(knowledge) -> CXRKnowledge | Any:
    if knowledge is None:
        return CXRKnowledge()
    if isinstance(knowledge, dict):
        return build(KNOWLEDGE, knowledge, where="knowledge")
    return knowledge


class CXRDataset(SampleDataset):
    """Base of every chest X-ray layout; subclasses only produce ``records`` and ``classes``.

    Args:
        image_size: output side (square). channels: 1 or 3 (grey is repeated to 3).
        text: "facets" | "report" | "label" (see :func:`.knowledge.compose_text`).
        knowledge: a knowledge object or config dict (default: the curated CXRKnowledge).
        facets: knowledge facets used as captions.
        split: "all" | "train" | "val"; val_fraction, split_seed: the fixed split.
        limit: keep this many records (a seeded shuffle picks them) - for tiny runs.
        transforms: extra dict transforms (callables or TRANSFORMS configs, e.g. the radiograph
            augmentation) run on each sample while its image is in [0, 1], before ``mean``/``std``
            normalisation; MONAI random transforms are seeded per (seed, epoch, index).
        drop_missing: drop records whose image file is absent when the dataset is built (a
            partial download) instead of failing on them one by one; ``missing_before`` is the
            number a layout already left out for that reason (``self.missing`` reports the sum).
    """

    #: every sample of this layout carries ``boxes`` (possibly none), so batches agree
    has_boxes = False
    #: file and folder names may carry patient identifiers: errors name files by key, and the
    #: config a run dumps redacts this dataset's path arguments (facetvlp.core.privacy)
    phi_paths = True

    def __init__(self, records: list[Record], classes: Sequence[str], *, image_size: int = 224,
                 channels: int = 3, text: str = "facets", knowledge: Any = None,
                 facets: Sequence[str] = TRAINING_FACETS, split: str = "all", val_fraction: float = 0.1,
                 split_seed: int = 0, limit: int | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, transforms: Sequence[Any] = (),
                 drop_missing: bool = True, root: str | os.PathLike | None = None,
                 missing_before: int = 0, on_error: str = "raise", seed: int = 0):
        super().__init__(on_error=on_error, seed=seed)
        check_split(split)
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if text not in ("facets", "report", "label"):
            raise ConfigError(f"text must be 'facets', 'report' or 'label', got {text!r}")
        self.classes = list(classes)
        unknown = sorted({label for r in records for label in r.labels} - set(self.classes))
        if unknown:
            raise ConfigError(f"{type(self).__name__}: labels {unknown[:10]} are not in classes {self.classes}")
        self.image_size, self.channels, self.text_mode = image_size, channels, text
        self.facets = tuple(facets)
        self.knowledge = _build_knowledge(knowledge) if text == "facets" else None
        self.mean = torch.tensor(mean or (IMAGENET_MEAN if channels == 3 else (0.5,))).view(-1, 1, 1)
        self.std = torch.tensor(std or (IMAGENET_STD if channels == 3 else (0.25,))).view(-1, 1, 1)
        self.transforms = [build(TRANSFORMS, t, where="transforms") if isinstance(t, dict) else t
                           for t in transforms]
        self.root = Path(root) if root is not None else None
        self.missing = missing_before
        if drop_missing:
            kept = [r for r in records if r.path.is_file()]
            self.missing += len(records) - len(kept)
            records = kept
        if self.missing:
            log.info("%s: %d images not found on disk; left out", type(self).__name__, self.missing)
        records = select_split(records, lambda r: r.group or r.path.name, split, val_fraction,
                               split_seed)
        if limit is not None and limit < len(records):
            records = list(records)
            random.Random(split_seed).shuffle(records)
            records = records[:limit]
        self.records = records
        if self.has_boxes:
            # the texts a grounding head looks for: box_labels index into them (one per class)
            self.queries = [re.sub(r"(?<=[a-z])(?=[A-Z])", " ", c).replace("_", " ").lower()
                            for c in self.classes]

    def __len__(self) -> int:
        return len(self.records)

    def label_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for record in self.records:
            for label in record.labels:
                counts[label] += 1
        return counts

    @staticmethod
    def _source_id(record: Record) -> str:
        # DICOM file names are often SOP Instance UIDs and folders patient names or MRNs (MIMIC's
        # pSUBJECT/sSTUDY): meta names the file by the key its errors use (facetvlp locate finds it)
        return "file:" + file_key(record.path)

    def load(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image, image_meta = read_image(record.path)
        _, height, width = image.shape
        if image.shape[0] != self.channels:
            image = image.mean(0, keepdim=True) if self.channels == 1 else image[:1].expand(3, -1, -1)
        image, scale = fit_square(image, self.image_size)
        sample: dict[str, Any] = {
            "image": image.float(),
            "text": compose_text(record.report, record.labels, self.knowledge, self.text_mode, self.facets),
            "labels": torch.tensor([1.0 if c in record.labels else 0.0 for c in self.classes]),
            # the source grid, so predictions on the model input map back (pure scaling: the
            # padding is at the bottom/right)
            "meta": {"source": self._source_id(record), "source_shape": [int(height), int(width)],
                     "input_scale": float(scale),
                     **{k: image_meta.get(k) for k in ("modality", "view_position", "study_key", "spacing")
                        if image_meta.get(k) is not None}},
        }
        if record.boxes or self.has_boxes:
            ref_w, ref_h = record.box_reference or (width, height)
            sx, sy = width / ref_w * scale, height / ref_h * scale
            sample["boxes"] = torch.tensor([[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for _, x0, y0, x1, y1 in record.boxes],
                                           dtype=torch.float32).reshape(-1, 4)
            sample["box_labels"] = torch.tensor([self.classes.index(b[0]) for b in record.boxes],
                                                dtype=torch.int64)
        if record.mask_rle is not None:
            try:
                mask = np.zeros((height, width), dtype=np.uint8)
                for runs in record.mask_rle:
                    mask |= decode_rle(runs, width, height)
            except ValueError as exc:
                raise ReadError(record.path, f"mask: {exc}") from None
            sample["mask"] = fit_square(torch.from_numpy(mask)[None].float(), self.image_size, mode="nearest")[0][0]
        for transform in self.transforms:
            if hasattr(transform, "set_random_state"):
                # MONAI random transforms: draws depend on (seed, epoch, index) only, so a resumed
                # run or another worker count sees the same augmentation
                transform.set_random_state(seed=self.sample_seed(index))
            sample = transform(sample)
        image = torch.as_tensor(sample["image"]).as_subclass(torch.Tensor)  # MONAI may hand back a MetaTensor
        sample["image"] = ((image - self.mean) / self.std).float()
        return sample


# --- layouts -------------------------------------------------------------------------------

def _split_labels(value: Any, sep: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(sep) if v.strip())
    return tuple(str(v).strip() for v in value)


@DATASETS.register_module()
class CXRFolderDataset(CXRDataset):
    """``root/<class name>/<image>`` (the Kaggle pneumonia layout). ``group_pattern``: a regex
    whose first match in the file name is the patient (keeps the val split patient-disjoint)."""

    def __init__(self, root: str | os.PathLike, classes: Sequence[str] | None = None,
                 group_pattern: str | None = None, **kwargs):
        root = Path(root)
        if not root.is_dir():
            raise TableFormatError(root, "dataset folder not found")
        classes = list(classes or sorted(p.name for p in root.iterdir() if p.is_dir()))
        pattern = re.compile(group_pattern) if group_pattern else None
        records = []
        for cls in classes:
            folder = root / cls
            if not folder.is_dir():
                raise TableFormatError(folder, f"class folder for {cls!r} not found")
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    match = pattern.search(path.name) if pattern else None
                    records.append(Record(path, (cls,), group=match.group(0) if match else None))
        super().__init__(records, classes, root=root, **kwargs)


@DATASETS.register_module()
class CXRManifestDataset(CXRDataset):
    """A CSV or JSONL manifest: ``path`` (relative to ``root`` or the manifest's folder),
    optional ``report`` (free text) and ``labels`` (``label_sep``-joined string in CSV, a list or
    string in JSONL), optional ``group``. ``classes`` default to the sorted labels seen."""

    def __init__(self, manifest: str | os.PathLike, root: str | os.PathLike | None = None,
                 classes: Sequence[str] | None = None, label_sep: str = ";", **kwargs):
        manifest = Path(manifest)
        root = Path(root) if root else manifest.parent
        if manifest.suffix.lower() in (".jsonl", ".ndjson"):
            rows = read_jsonl(manifest)
        else:
            rows = read_csv(manifest, required=("path",))
        records = []
        for row in rows:
            if not row.get("path"):
                raise TableFormatError(manifest, f"a row has no 'path': {sorted(row)}")
            records.append(Record(root / row["path"], _split_labels(row.get("labels"), label_sep),
                                  report=row.get("report") or None, group=row.get("group") or None))
        classes = list(classes or sorted({label for r in records for label in r.labels}))
        super().__init__(records, classes, root=root, **kwargs)


@DATASETS.register_module()
class IUXrayDataset(CXRDataset):
    """Indiana University chest X-rays (OpenI), Kaggle CSV layout: ``indiana_reports.csv`` (uid,
    MeSH, Problems, image, indication, comparison, findings, impression) and
    ``indiana_projections.csv`` (uid, filename, projection); images ``<images_dir>/<filename>``.

    Labels come from the radiologists' MeSH index mapped onto :data:`.reports.FINDING_NAMES`
    (reports marked "No Indexing" get no labels); the report text is the findings + impression.
    """

    def __init__(self, reports_csv: str | os.PathLike, projections_csv: str | os.PathLike,
                 images_dir: str | os.PathLike, projections: Sequence[str] = ("Frontal",),
                 classes: Sequence[str] | None = None, **kwargs):
        reports = {row["uid"]: row for row in read_csv(
            reports_csv, required=("uid", "MeSH", "findings", "impression"))}
        classes = list(classes or FINDING_NAMES)
        images_dir = Path(images_dir)
        records = []
        for row in read_csv(projections_csv, required=("uid", "filename", "projection")):
            report = reports.get(row["uid"])
            if report is None or (projections and row["projection"] not in projections):
                continue
            labels = tuple(sorted((iu_mesh_findings(report["MeSH"]) or set()) & set(classes)))
            text = " ".join(p for p in (report["findings"], report["impression"]) if p)
            records.append(Record(images_dir / row["filename"], labels, report=text or None, group=row["uid"]))
        super().__init__(records, classes, root=images_dir, **kwargs)
