"""Datasets over the label tables of public chest X-ray collections.

Each class parses its collection's published table layout into :class:`.datasets.Record` s and
leaves everything else (image decoding, resizing, texts, labels, splits, ``on_error``) to
:class:`.datasets.CXRDataset`. Images are looked up by file name anywhere below ``images_dir``,
since downloads nest them differently (NIH ``images_001/images/``, SIIM study/series folders).

==================  ===========================================================================
NIH ChestX-ray14    ``Data_Entry_2017*.csv``: Image Index, Finding Labels ("A|B", "No Finding"),
                    Patient ID, View Position ...; ``BBox_List_2017.csv``: Image Index, Finding
                    Label, Bbox [x, y, w, h] in the 1024 x 1024 release images.
RSNA Pneumonia      ``stage_2_train_labels.csv``: patientId, x, y, width, height, Target (one row
                    per box, Target 0 rows have no box); images ``<patientId>.dcm``.
SIIM-ACR PTX        ``train-rle.csv``: ImageId, EncodedPixels (relative run lengths, column-major,
                    "-1" = none; several rows = several masks); images ``<ImageId>.dcm``.
VinDr-CXR           ``train.csv``: image_id, class_name, class_id, rad_id, x_min, y_min, x_max,
                    y_max (one row per radiologist finding); images ``<image_id>.dicom``.
CheXpert            ``train.csv`` / ``valid.csv``: Path, Sex, Age, Frontal/Lateral, AP/PA, then the
                    14 observations as 1.0 / 0.0 / -1.0 (uncertain) / blank (not mentioned).
TBX11K              ``annotations/xml/<name>.xml``: Pascal VOC, ``<size>`` the original radiograph,
                    ``<object><name>`` ActiveTuberculosis / ObsoletePulmonaryTuberculosis with a
                    ``<bndbox>`` in original pixels; images ``<name>.png`` (released at 512 x 512).
MIMIC-CXR-JPG       ``mimic-cxr-2.0.0-chexpert.csv``: subject_id, study_id, 14 observations as in
                    CheXpert; ``-metadata.csv``: dicom_id, subject_id, study_id, ViewPosition ...;
                    ``-split.csv``: dicom_id, study_id, subject_id, split; images
                    ``files/p<first 2 digits>/p<subject_id>/s<study_id>/<dicom_id>.jpg``; reports
                    (``mimic-cxr-reports``) ``files/p../p<subject_id>/s<study_id>.txt``.
==================  ===========================================================================
"""

from __future__ import annotations

import csv
import os
import re
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS

from .datasets import CXRDataset, Record, TableFormatError, index_files, open_table, read_csv
from .reports import CHEXPERT_OBSERVATIONS

NIH_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
               "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
               "No Finding")
# The NIH box list names one class differently from the label table.
_NIH_BOX_NAMES = {"Infiltrate": "Infiltration"}
TBX11K_CLASSES = ("ActiveTuberculosis", "ObsoletePulmonaryTuberculosis")
VINDR_CLASSES = ("Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Consolidation", "ILD",
                 "Infiltration", "Lung Opacity", "Nodule/Mass", "Other lesion", "Pleural effusion",
                 "Pleural thickening", "Pneumothorax", "Pulmonary fibrosis", "No finding")


class _ImageLookup:
    """Finds images by file name below a folder. With ``drop_missing`` (the default) rows whose
    image is absent are counted and left out here, before any Path is built for them: tables
    such as NIH's list 112,120 images and a download often holds a part."""

    def __init__(self, images_dir: Path, kwargs: dict):
        self.images_dir = images_dir
        self.index = index_files(images_dir)
        self.drop_missing = kwargs.get("drop_missing", True)
        self.missing = 0

    def __call__(self, name: str) -> Path | None:
        path = self.index.get(name)
        if path is None:
            if self.drop_missing:
                self.missing += 1
                return None
            path = self.images_dir / name  # kept, so on_error deals with it when loaded
        return path


def _located(by_id: dict[str, Record], suffix: str, find: _ImageLookup) -> list[Record]:
    """The records whose image ``<id><suffix>`` is found, with their path filled in."""
    records = []
    for image_id, record in by_id.items():
        path = find(image_id + suffix)
        if path is not None:
            record.path = path
            records.append(record)
    return records


@DATASETS.register_module()
class NIHChestXrayDataset(CXRDataset):
    has_boxes = True

    def __init__(self, data_entry_csv: str | os.PathLike, images_dir: str | os.PathLike,
                 bbox_csv: str | os.PathLike | None = None, views: Sequence[str] | None = None,
                 classes: Sequence[str] = NIH_CLASSES, **kwargs):
        images_dir = Path(images_dir)
        find = _ImageLookup(images_dir, kwargs)
        boxes = defaultdict(list)
        if bbox_csv is not None:
            with open_table(bbox_csv) as handle:
                rows = csv.reader(handle)
                next(rows, None)  # the header splits "Bbox [x,y,w,h]" into four cells
                for number, row in enumerate(rows, start=2):
                    try:
                        name, label, x, y, w, h = row[0], row[1], *map(float, row[2:6])
                    except (ValueError, IndexError):
                        raise TableFormatError(bbox_csv, f"line {number}: expected name, label, x, y, w, h") from None
                    boxes[name].append((_NIH_BOX_NAMES.get(label, label), x, y, x + w, y + h))
        records = []
        for row in read_csv(data_entry_csv, required=("Image Index", "Finding Labels", "Patient ID")):
            if views and row.get("View Position") not in views:
                continue
            name = row["Image Index"]
            path = find(name)
            if path is None:
                continue
            labels = tuple(label for label in row["Finding Labels"].split("|") if label in classes)
            records.append(Record(path, labels, group=row["Patient ID"],
                                  boxes=[b for b in boxes.get(name, []) if b[0] in classes],
                                  box_reference=(1024, 1024)))
        super().__init__(records, classes, root=images_dir, missing_before=find.missing, **kwargs)


@DATASETS.register_module()
class RSNAPneumoniaDataset(CXRDataset):
    """One class, "Pneumonia" (Target 1: lung opacity suggestive of pneumonia, with its boxes)."""

    has_boxes = True

    def __init__(self, labels_csv: str | os.PathLike, images_dir: str | os.PathLike, suffix: str = ".dcm", **kwargs):
        images_dir = Path(images_dir)
        find = _ImageLookup(images_dir, kwargs)
        by_patient: dict[str, Record] = {}
        rows = read_csv(labels_csv, required=("patientId", "x", "y", "width", "height", "Target"))
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            pid = row["patientId"]
            record = by_patient.setdefault(pid, Record(Path(), group=pid))
            if row["Target"] == "1":
                try:
                    x, y, w, h = (float(row[k]) for k in ("x", "y", "width", "height"))
                except ValueError:
                    # the line, never the patient ID: messages reach logs
                    raise TableFormatError(labels_csv, f"line {number}: Target 1 without a box") from None
                record.labels = ("Pneumonia",)
                record.boxes.append(("Pneumonia", x, y, x + w, y + h))
        records = _located(by_patient, suffix, find)
        super().__init__(records, ["Pneumonia"], root=images_dir, missing_before=find.missing, **kwargs)


@DATASETS.register_module()
class SIIMPneumothoraxDataset(CXRDataset):
    """One class, "Pneumothorax", with the union of an image's RLE masks as ``mask``."""

    def __init__(self, rle_csv: str | os.PathLike, images_dir: str | os.PathLike, suffix: str = ".dcm", **kwargs):
        images_dir = Path(images_dir)
        find = _ImageLookup(images_dir, kwargs)
        by_image: dict[str, Record] = {}
        for row in read_csv(rle_csv, required=("ImageId", "EncodedPixels")):
            uid, runs = row["ImageId"].strip(), row["EncodedPixels"].strip()
            record = by_image.setdefault(uid, Record(Path(), mask_rle=[]))
            if runs != "-1":
                record.labels = ("Pneumothorax",)
                record.mask_rle.append(runs)
        records = _located(by_image, suffix, find)
        super().__init__(records, ["Pneumothorax"], root=images_dir, missing_before=find.missing, **kwargs)


@DATASETS.register_module()
class VinDrCXRDataset(CXRDataset):
    """Labels: classes found by at least ``min_radiologists`` readers; boxes: every reader's box."""

    has_boxes = True

    def __init__(self, annotations_csv: str | os.PathLike, images_dir: str | os.PathLike,
                 suffix: str = ".dicom", min_radiologists: int = 1, classes: Sequence[str] = VINDR_CLASSES, **kwargs):
        images_dir = Path(images_dir)
        find = _ImageLookup(images_dir, kwargs)
        readers: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        boxes: dict[str, list] = defaultdict(list)
        rows = read_csv(annotations_csv, required=("image_id", "class_name", "rad_id", "x_min", "y_min",
                                                    "x_max", "y_max"))
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            image_id, label = row["image_id"], row["class_name"]
            readers[image_id][label].add(row["rad_id"])
            if row["x_min"] and label in classes:
                try:
                    boxes[image_id].append((label, *(float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))))
                except ValueError:
                    raise TableFormatError(annotations_csv, f"line {number}: non-numeric box") from None
        records = []
        for image_id, votes in readers.items():
            labels = {label for label, rads in votes.items() if len(rads) >= min_radiologists and label in classes}
            if len(labels) > 1:
                labels.discard("No finding")  # another reader saw something
            path = find(image_id + suffix)
            if path is not None:
                records.append(Record(path, tuple(sorted(labels)), boxes=boxes.get(image_id, [])))
        super().__init__(records, classes, root=images_dir, missing_before=find.missing, **kwargs)


def _chexpert_labels(row: dict[str, str], classes: Sequence[str], uncertain: str) -> tuple[str, ...]:
    hot = {"1", "1.0"} | ({"-1", "-1.0"} if uncertain == "positive" else set())
    return tuple(c for c in classes if row.get(c, "").strip() in hot)


def _check_uncertain(uncertain: str) -> None:
    if uncertain not in ("positive", "negative"):
        raise ConfigError(f"uncertain must be 'positive' (U-ones) or 'negative' (U-zeros), got {uncertain!r}")


@DATASETS.register_module()
class CheXpertDataset(CXRDataset):
    """``root`` is the folder the CSV's ``Path`` column is relative to (the one that holds
    ``CheXpert-v1.0-small/``). ``uncertain``: "positive" (U-ones) or "negative" (U-zeros)."""

    def __init__(self, csv_path: str | os.PathLike, root: str | os.PathLike, uncertain: str = "positive",
                 frontal_only: bool = False, classes: Sequence[str] = CHEXPERT_OBSERVATIONS, **kwargs):
        _check_uncertain(uncertain)
        root = Path(root)
        records = []
        for row in read_csv(csv_path, required=("Path", "Frontal/Lateral", *classes)):
            if frontal_only and row["Frontal/Lateral"] != "Frontal":
                continue
            patient = re.search(r"patient\d+", row["Path"])
            records.append(Record(root / row["Path"], _chexpert_labels(row, classes, uncertain),
                                  group=patient.group(0) if patient else None))
        super().__init__(records, classes, root=root, **kwargs)


@DATASETS.register_module()
class MIMICCXRDataset(CXRDataset):
    """MIMIC-CXR-JPG. ``official_split`` ("train" | "validate" | "test") needs ``split_csv``;
    ``views`` needs ``metadata_csv``; ``reports_dir`` (the folder holding the reports' ``files/``)
    adds the report text."""

    def __init__(self, root: str | os.PathLike, chexpert_csv: str | os.PathLike,
                 metadata_csv: str | os.PathLike | None = None, split_csv: str | os.PathLike | None = None,
                 official_split: str | None = None, views: Sequence[str] | None = None,
                 reports_dir: str | os.PathLike | None = None, uncertain: str = "positive",
                 classes: Sequence[str] = CHEXPERT_OBSERVATIONS, **kwargs):
        _check_uncertain(uncertain)
        if official_split is not None and split_csv is None:
            raise ConfigError("MIMICCXRDataset: official_split needs split_csv")
        if views is not None and metadata_csv is None:
            raise ConfigError("MIMICCXRDataset: views needs metadata_csv")
        root = Path(root)
        studies = {row["study_id"]: row for row in read_csv(chexpert_csv, required=("subject_id", "study_id", *classes))}
        if metadata_csv is not None:
            images = read_csv(metadata_csv, required=("dicom_id", "subject_id", "study_id", "ViewPosition"))
        elif split_csv is not None:
            images = read_csv(split_csv, required=("dicom_id", "subject_id", "study_id"))
        else:
            raise ConfigError("MIMICCXRDataset: give metadata_csv or split_csv (they list the images)")
        split_of = ({row["dicom_id"]: row["split"] for row in read_csv(split_csv, required=("dicom_id", "split"))}
                    if split_csv is not None else {})
        records = []
        for row in images:
            if official_split is not None and split_of.get(row["dicom_id"]) != official_split:
                continue
            if views is not None and row.get("ViewPosition") not in views:
                continue
            study = studies.get(row["study_id"])
            if study is None:
                continue  # studies without CheXpert labels
            subject = row["subject_id"]
            folder = Path("files") / f"p{subject[:2]}" / f"p{subject}"
            report = None
            if reports_dir is not None:
                report_path = Path(reports_dir) / folder / f"s{row['study_id']}.txt"
                report = report_path.read_text(encoding="utf-8") if report_path.is_file() else None
            records.append(Record(root / folder / f"s{row['study_id']}" / f"{row['dicom_id']}.jpg",
                                  _chexpert_labels(study, classes, uncertain), report=report, group=subject))
        super().__init__(records, classes, root=root, **kwargs)


@DATASETS.register_module()
class TBX11KDataset(CXRDataset):
    """TBX11K tuberculosis boxes (Liu et al., CVPR 2020): one VOC xml per image, boxes given in the
    original radiograph's pixels and scaled to the released PNG (what TBX11K's own converter does).
    Every image is its own group (TBX11K publishes no patient ids)."""

    has_boxes = True

    def __init__(self, xml_dir: str | os.PathLike, images_dir: str | os.PathLike,
                 classes: Sequence[str] = TBX11K_CLASSES, **kwargs):
        xml_dir, images_dir = Path(xml_dir), Path(images_dir)
        if not xml_dir.is_dir():
            raise TableFormatError(xml_dir, "no such folder of VOC xml files")
        find = _ImageLookup(images_dir, kwargs)
        records = []
        for xml_path in sorted(xml_dir.glob("*.xml")):
            name, size, boxes = read_voc_boxes(xml_path)
            path = find(name + ".png")
            if path is None:
                continue
            boxes = [b for b in boxes if b[0] in classes]
            records.append(Record(path, tuple(sorted({b[0] for b in boxes})), group=name, boxes=boxes,
                                  box_reference=size))
        super().__init__(records, classes, root=images_dir, missing_before=find.missing, **kwargs)


def read_voc_boxes(path: Path) -> tuple[str, tuple[int, int], list[tuple[str, float, float, float, float]]]:
    """(image name, (width, height) the boxes are in, [(label, x0, y0, x1, y1)]) of a VOC xml."""
    try:
        root = ElementTree.parse(path).getroot()
        name = (root.findtext("filename") or path.stem).rsplit(".", 1)[0]
        size = (int(root.findtext("size/width")), int(root.findtext("size/height")))
        boxes = [(obj.findtext("name"), *(float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
                 for obj in root.iter("object")]
    except (ElementTree.ParseError, TypeError, ValueError) as exc:
        raise TableFormatError(path, f"not a Pascal VOC annotation ({type(exc).__name__}: {exc})") from None
    return name, size, boxes
