"""CXR datasets: every layout on real tables where we have them, format-true fixtures otherwise."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from facetvlp.core.errors import ConfigError, ReadError
from facetvlp.core.privacy import file_key
from facetvlp.core.registry import DATASETS, build
from facetvlp.domains.medical.datasets import (
    IMAGENET_MEAN, IMAGENET_STD, CXRFolderDataset, CXRManifestDataset, ImageFileError, IUXrayDataset,
    TableFormatError, decode_rle,
)
from facetvlp.domains.medical.transforms import fit_square
from facetvlp.domains.medical.dicom_read import read_dicom
from facetvlp.domains.medical.knowledge import CXRKnowledge
from facetvlp.domains.medical.label_tables import (
    CheXpertDataset, MIMICCXRDataset, NIHChestXrayDataset, RSNAPneumoniaDataset, SIIMPneumothoraxDataset,
    VinDrCXRDataset,
)

torch.set_num_threads(1)
SIIM_UID = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819"


def grey_png(path: Path, value: int, size=(10, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=value).save(path)  # size = (width, height)
    return path


def unnormalise(image: torch.Tensor) -> torch.Tensor:
    return image * torch.tensor(IMAGENET_STD).view(-1, 1, 1) + torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)


def tables(shared_data: Path) -> Path:
    folder = shared_data / "medical" / "cxr_label_tables"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


# --- geometry and RLE ----------------------------------------------------------------------

def test_fit_square_keeps_aspect_and_pads_bottom_right():
    image = torch.full((1, 20, 10), 0.75)
    out, scale = fit_square(image, 32)
    assert out.shape == (1, 32, 32) and scale == pytest.approx(1.6)
    assert torch.allclose(out[:, :32, :16], torch.tensor(0.75))  # content: 20x10 -> 32x16
    assert (out[:, :, 16:] == 0).all()


def brute_force_rle(runs: str, width: int, height: int) -> np.ndarray:
    """The Kaggle SIIM description, pixel by pixel: pixels are numbered top to bottom, then left
    to right; each start is relative to the end of the previous run."""
    mask = np.zeros((height, width), dtype=np.uint8)
    numbers = [int(v) for v in runs.split()]
    end = 0
    for start, length in zip(numbers[0::2], numbers[1::2]):
        first = end + start
        for pixel in range(first, first + length):
            mask[pixel % height, pixel // height] = 1
        end = first + length
    return mask


def test_decode_rle_matches_the_pixel_by_pixel_definition():
    runs = "3 4 10 2 1 7"
    assert np.array_equal(decode_rle(runs, 5, 6), brute_force_rle(runs, 5, 6))
    assert decode_rle(runs, 5, 6).sum() == 4 + 2 + 7
    assert decode_rle("-1", 4, 3).shape == (3, 4) and decode_rle("-1", 4, 3).sum() == 0
    with pytest.raises(ValueError, match="beyond"):
        decode_rle("25 10", 5, 6)
    with pytest.raises(ValueError, match="odd"):
        decode_rle("1 2 3", 5, 6)


# --- folder-per-class ----------------------------------------------------------------------

@pytest.fixture()
def folder(tmp_path):
    root = tmp_path / "cxr"
    for i in range(12):
        grey_png(root / "NORMAL" / f"IM-{i:04d}-0001.png", 40)
        grey_png(root / "PNEUMONIA" / f"person{i}_bacteria_{i}.png", 200)
        grey_png(root / "PNEUMONIA" / f"person{i}_virus_{i + 100}.png", 210)
    (root / "PNEUMONIA" / "notes.txt").write_text("not an image")
    return root


def test_folder_dataset_samples(folder):
    ds = CXRFolderDataset(folder, image_size=32)
    assert ds.classes == ["NORMAL", "PNEUMONIA"] and len(ds) == 36
    assert ds.label_counts() == {"NORMAL": 12, "PNEUMONIA": 24}
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    # a constant grey 40/255 image stays 40/255 in the content area after un-normalising
    assert torch.allclose(unnormalise(sample["image"])[:, :, :16], torch.tensor(40 / 255), atol=1e-5)
    assert sample["labels"].tolist() == [1.0, 0.0]
    kb = CXRKnowledge()
    assert sample["text"] == kb.facet_texts("No Finding")  # NORMAL resolves to No Finding
    assert sample["meta"]["source"] == "file:" + file_key(folder / "NORMAL" / "IM-0000-0001.png")
    label_ds = CXRFolderDataset(folder, image_size=32, text="label")
    assert label_ds[len(label_ds) - 1]["text"] == ["a chest x-ray showing pneumonia"]
    assert CXRFolderDataset(folder, image_size=32, channels=1)[0]["image"].shape == (1, 32, 32)


def test_fixed_split_is_disjoint_stable_and_patient_grouped(folder):
    pattern = r"^(person\d+|IM-\d+)"
    kwargs = dict(image_size=16, group_pattern=pattern, val_fraction=0.3, split_seed=1)
    train = CXRFolderDataset(folder, split="train", **kwargs)
    val = CXRFolderDataset(folder, split="val", **kwargs)
    names = lambda d: {r.path.name for r in d.records}  # noqa: E731
    assert names(train).isdisjoint(names(val)) and len(train) + len(val) == 36
    assert names(val) == names(CXRFolderDataset(folder, split="val", **kwargs))
    assert 0 < len(val) < 36
    groups = lambda d: {r.group for r in d.records}  # noqa: E731
    assert groups(train).isdisjoint(groups(val))  # bacteria and virus image of one person stay together
    assert len(CXRFolderDataset(folder, image_size=16, limit=5)) == 5


def test_bad_image_raises_or_is_skipped(folder):
    (folder / "NORMAL" / "IM-0000-0001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = CXRFolderDataset(folder, image_size=16)
    bad = folder / "NORMAL" / "IM-0000-0001.png"
    with pytest.raises(ImageFileError, match=f"file {file_key(bad)}: cannot decode image") as caught:
        ds[0]
    assert caught.value.path == str(bad) and "IM-0000" not in str(caught.value)  # Pillow quotes the path
    skipping = CXRFolderDataset(folder, image_size=16, on_error="skip")
    sample = skipping[0]
    assert sample["meta"]["skipped"] == 1
    assert sample["meta"]["source"] == "file:" + file_key(folder / "NORMAL" / "IM-0001-0001.png")
    assert skipping.skipped == 1


def test_config_errors(folder, tmp_path):
    with pytest.raises(ConfigError, match="split"):
        CXRFolderDataset(folder, split="test")
    with pytest.raises(ConfigError, match="text"):
        CXRFolderDataset(folder, text="poem")
    with pytest.raises(TableFormatError, match="class folder"):
        CXRFolderDataset(folder, classes=["NORMAL", "COVID"])
    with pytest.raises(TableFormatError, match="not found"):
        CXRFolderDataset(tmp_path / "nowhere")
    ds = build(DATASETS, {"type": "CXRFolderDataset", "root": str(folder), "image_size": 16}, where="test")
    assert len(ds) == 36


# --- manifests -----------------------------------------------------------------------------

def test_csv_manifest_with_dicom_and_png(tmp_path):
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")
    grey_png(tmp_path / "img" / "a.png", 128)
    with open(tmp_path / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "report", "labels"])
        writer.writerow(["ct.dcm", "FINDINGS: Small left effusion. IMPRESSION: Effusion.", "Pleural Effusion"])
        writer.writerow(["img/a.png", "", "Cardiomegaly;Edema"])
        writer.writerow(["missing.png", "", ""])
    ds = CXRManifestDataset(tmp_path / "manifest.csv", image_size=64, channels=1, mean=[0.0], std=[1.0])
    assert ds.classes == ["Cardiomegaly", "Edema", "Pleural Effusion"] and len(ds) == 2 and ds.missing == 1
    ct = ds[0]
    assert ct["text"][:2] == ["Small left effusion.", "Effusion."]
    assert ct["labels"].tolist() == [0.0, 0.0, 1.0]
    assert ct["meta"]["source"] == "file:" + file_key(tmp_path / "ct.dcm")
    assert ct["meta"]["modality"] == "CT"
    # the image is read_dicom's output, resized (128 -> 64) by area-like antialiasing
    reference = torch.from_numpy(read_dicom(tmp_path / "ct.dcm").array)[None, None]
    expected = torch.nn.functional.interpolate(reference, size=(64, 64), mode="bilinear", antialias=True)[0]
    assert torch.allclose(ct["image"], expected, atol=1e-5)
    both = ds[1]
    assert both["labels"].tolist() == [1.0, 1.0, 0.0]
    assert len(both["text"]) == len(CXRKnowledge().facet_texts("Cardiomegaly")) + len(
        CXRKnowledge().facet_texts("Edema"))


def test_jsonl_manifest_and_its_errors(tmp_path):
    grey_png(tmp_path / "a.png", 10)
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.png", "labels": ["Pneumothorax"]}) + "\n\n")
    ds = CXRManifestDataset(tmp_path / "m.jsonl", classes=["Pneumothorax", "No Finding"], image_size=16)
    assert ds[0]["labels"].tolist() == [1.0, 0.0]
    (tmp_path / "bad.jsonl").write_text('{"path": "a.png"}\n{oops\n')
    with pytest.raises(TableFormatError, match=f"file {file_key(tmp_path / 'bad.jsonl')}: line 2: not JSON"):
        CXRManifestDataset(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text("file,report\na.png,x\n")
    with pytest.raises(TableFormatError, match=r"missing column\(s\) \['path'\]"):
        CXRManifestDataset(tmp_path / "bad.csv")
    with pytest.raises(ConfigError, match="not in classes"):
        CXRManifestDataset(tmp_path / "m.jsonl", classes=["Edema"])


# --- IU X-ray (real tables, generated stand-in images) ---------------------------------------

def test_iu_xray_on_the_real_tables(shared_data, tmp_path):
    folder = shared_data / "medical" / "iu_xray_reports"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    with open(folder / "indiana_projections.csv", newline="") as handle:
        projections = list(csv.DictReader(handle))
    frontal_uid1 = next(p["filename"] for p in projections if p["uid"] == "1" and p["projection"] == "Frontal")
    frontal_uid2 = next(p["filename"] for p in projections if p["uid"] == "2" and p["projection"] == "Frontal")
    for name in (frontal_uid1, frontal_uid2):
        grey_png(tmp_path / "images" / name, 90)
    ds = IUXrayDataset(folder / "indiana_reports.csv", folder / "indiana_projections.csv", tmp_path / "images",
                       image_size=16)
    assert len(ds) == 2 and ds.missing == sum(p["projection"] == "Frontal" for p in projections) - 2
    first, second = ds[0], ds[1]
    assert first["labels"][ds.classes.index("No Finding")] == 1.0  # MeSH "normal"
    assert first["text"][0] == "The cardiac silhouette and mediastinum size are within normal limits."
    assert second["labels"][ds.classes.index("Cardiomegaly")] == 1.0  # MeSH "Cardiomegaly/borderline"
    assert second["labels"].sum() == 1.0
    assert "Borderline cardiomegaly." in second["text"]
    assert IUXrayDataset(folder / "indiana_reports.csv", folder / "indiana_projections.csv", tmp_path / "images",
                         projections=("Lateral",)).records == []


# --- public label tables -------------------------------------------------------------------

def test_nih_on_the_real_tables_and_box_scaling(shared_data, tmp_path):
    folder = tables(shared_data)
    ds = NIHChestXrayDataset(folder / "Data_Entry_2017_v2020.csv.gz", folder, bbox_csv=folder / "BBox_List_2017.csv.gz",
                             image_size=64)
    assert {r.path.name: r.labels for r in ds.records} == {
        "00000001_000.png": ("Cardiomegaly",), "00027426_000.png": ("No Finding",)}
    assert ds.missing == 112120 - 2
    sample = ds[0]
    assert sample["image"].shape == (3, 64, 64) and sample["boxes"].shape == (0, 4)
    # a box given in 1024 space on a 512 px image, resized to 64: coordinates x 64/1024
    grey_png(tmp_path / "imgs" / "00000001_000.png", 50, size=(512, 512))
    with gzip.open(tmp_path / "bbox.csv.gz", "wt") as handle:
        handle.write("Image Index,Finding Label,Bbox [x,y,w,h],,,\n00000001_000.png,Infiltrate,100,200,300,400\n")
    boxed = NIHChestXrayDataset(folder / "Data_Entry_2017_v2020.csv.gz", tmp_path / "imgs",
                                bbox_csv=tmp_path / "bbox.csv.gz", image_size=64)
    item = boxed[0]
    assert torch.allclose(item["boxes"], torch.tensor([[100, 200, 400, 600]]) * 64 / 1024)
    assert item["box_labels"].tolist() == [boxed.classes.index("Infiltration")]


def test_rsna_boxes_from_the_real_table(shared_data, tmp_path):
    folder = tables(shared_data)
    dicom = shared_data / "medical" / "cxr_dicom" / f"{SIIM_UID}.dcm"
    positive, negative = "00436515-870c-4b36-a041-de91049b9ab4", "0004cfab-14fd-4e49-80ba-63a80b6bddd6"
    (tmp_path / "imgs").mkdir()
    for pid in (positive, negative):
        shutil.copy(dicom, tmp_path / "imgs" / f"{pid}.dcm")
    ds = RSNAPneumoniaDataset(folder / "kaggle_stage_2_train_labels.csv.zip", tmp_path / "imgs", image_size=128)
    assert len(ds) == 2 and ds.missing == 26684 - 2 and ds.classes == ["Pneumonia"]
    by_name = {r.path.stem: i for i, r in enumerate(ds.records)}
    pos = ds[by_name[positive]]
    assert pos["labels"].tolist() == [1.0]
    # rows "264,152,213,379" and "562,152,256,453" of the real table, on a 1024 px DICOM -> 128
    expected = torch.tensor([[264, 152, 264 + 213, 152 + 379], [562, 152, 562 + 256, 152 + 453]]) / 8
    assert torch.allclose(pos["boxes"], expected.float())
    neg = ds[by_name[negative]]
    assert neg["labels"].tolist() == [0.0] and neg["boxes"].shape == (0, 4)
    assert SIIM_UID not in json.dumps(pos["meta"])


def test_siim_masks(shared_data, tmp_path):
    folder = tables(shared_data)
    dicom_dir = shared_data / "medical" / "cxr_dicom"
    ds = SIIMPneumothoraxDataset(folder / "siim-pneumothorax-train-rle.csv.gz", dicom_dir, image_size=64)
    assert len(ds) == 1  # the one SIIM image we have, labelled -1 in the real table
    sample = ds[0]
    assert sample["labels"].tolist() == [0.0] and sample["mask"].shape == (64, 64) and sample["mask"].sum() == 0
    assert SIIM_UID not in sample["meta"]["source"]
    runs_a, runs_b = "5000 300 700 300", "600000 1000"
    (tmp_path / "rle.csv").write_text(f"ImageId, EncodedPixels\n{SIIM_UID}, {runs_a}\n{SIIM_UID}, {runs_b}\n")
    full = SIIMPneumothoraxDataset(tmp_path / "rle.csv", dicom_dir, image_size=1024)[0]
    expected = brute_force_rle(runs_a, 1024, 1024) | brute_force_rle(runs_b, 1024, 1024)
    assert full["labels"].tolist() == [1.0]
    assert np.array_equal(full["mask"].numpy().astype(np.uint8), expected)


def test_vindr_votes_and_boxes_from_the_real_table(shared_data, tmp_path):
    folder = tables(shared_data)
    image_id = "9a5094b2563a1ef3ff50dc5c7ff71345"
    with gzip.open(folder / "vinbigdata-train.csv.gz", "rt") as handle:
        rows = [r for r in csv.DictReader(handle) if r["image_id"] == image_id]
    votes = {}
    for r in rows:
        votes.setdefault(r["class_name"], set()).add(r["rad_id"])
    (tmp_path / "imgs").mkdir()
    shutil.copy(shared_data / "medical" / "cxr_dicom" / f"{SIIM_UID}.dcm", tmp_path / "imgs" / f"{image_id}.dicom")
    one = VinDrCXRDataset(folder / "vinbigdata-train.csv.gz", tmp_path / "imgs", image_size=1024)
    assert len(one) == 1
    sample = one[0]
    assert {one.classes[i] for i, v in enumerate(sample["labels"]) if v} == set(votes) - {"No finding"}
    assert sample["boxes"].shape == (len(rows), 4)  # every reader's box, at the image's own scale
    first = rows[0]
    assert sample["boxes"][0].tolist() == [float(first[k]) for k in ("x_min", "y_min", "x_max", "y_max")]
    two = VinDrCXRDataset(folder / "vinbigdata-train.csv.gz", tmp_path / "imgs", min_radiologists=2)
    assert {two.classes[i] for i, v in enumerate(two[0]["labels"]) if v} == {
        name for name, rads in votes.items() if len(rads) >= 2}


def test_chexpert_layout_and_uncertainty_policies(tmp_path):
    header = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
              "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
              "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]
    rows = [
        ["CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg", "Female", "68", "Frontal", "AP",
         "1.0", "", "", "", "", "", "", "", "", "0.0", "", "", "", "1.0"],
        ["CheXpert-v1.0-small/train/patient00002/study2/view1_frontal.jpg", "Female", "87", "Frontal", "AP",
         "", "", "-1.0", "1.0", "", "-1.0", "-1.0", "", "-1.0", "", "-1.0", "", "1.0", ""],
        ["CheXpert-v1.0-small/train/patient00002/study2/view2_lateral.jpg", "Female", "87", "Lateral", "",
         "", "", "-1.0", "1.0", "", "-1.0", "-1.0", "", "-1.0", "", "-1.0", "", "1.0", ""],
    ]
    with open(tmp_path / "train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header] + rows)
    for row in rows:
        grey_png(tmp_path / row[0], 100)
    ones = CheXpertDataset(tmp_path / "train.csv", tmp_path, image_size=16)
    zeros = CheXpertDataset(tmp_path / "train.csv", tmp_path, uncertain="negative", image_size=16, frontal_only=True)
    assert ones.classes == header[5:]
    assert ones[0]["labels"].tolist() == [float(v == "1.0") for v in rows[0][5:]]
    assert ones[1]["labels"].tolist() == [float(v in ("1.0", "-1.0")) for v in rows[1][5:]]
    assert zeros[1]["labels"].tolist() == [float(v == "1.0") for v in rows[1][5:]]
    assert len(zeros) == 2 and ones.records[2].group == "patient00002"
    with pytest.raises(ConfigError, match="U-ones"):
        CheXpertDataset(tmp_path / "train.csv", tmp_path, uncertain="ignore")


def test_mimic_cxr_layout(tmp_path):
    observations = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
                    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
                    "Pneumothorax", "Support Devices"]
    with open(tmp_path / "chexpert.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "study_id", *observations])
        writer.writerow(["10000032", "50414267", *["" if o != "No Finding" else "1.0" for o in observations]])
        writer.writerow(["10000764", "57375967", *["-1.0" if o == "Pneumonia" else "" for o in observations]])
    with open(tmp_path / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition"])
        writer.writerow(["02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "10000032", "50414267", "CHEST (PA AND LAT)", "PA"])
        writer.writerow(["174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "10000032", "50414267", "CHEST (PA AND LAT)", "LATERAL"])
        writer.writerow(["096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "10000764", "57375967", "CHEST (PORTABLE AP)", "AP"])
    with open(tmp_path / "split.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dicom_id", "study_id", "subject_id", "split"])
        writer.writerow(["02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "50414267", "10000032", "train"])
        writer.writerow(["174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "50414267", "10000032", "train"])
        writer.writerow(["096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4", "57375967", "10000764", "test"])
    images = {
        "files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg": 30,
        "files/p10/p10000032/s50414267/174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962.jpg": 60,
        "files/p10/p10000764/s57375967/096052b7-d256dc40-453a102b-fa7d01c6-1b22c6b4.jpg": 90,
    }
    for rel, value in images.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), value).save(tmp_path / rel)
    reports = tmp_path / "reports"
    (reports / "files/p10/p10000764").mkdir(parents=True)
    (reports / "files/p10/p10000764/s57375967.txt").write_text(
        "FINAL REPORT\n INDICATION: fever.\n FINDINGS: Possible right lower lobe pneumonia.\n")
    frontal = MIMICCXRDataset(tmp_path, tmp_path / "chexpert.csv", metadata_csv=tmp_path / "metadata.csv",
                              split_csv=tmp_path / "split.csv", views=("PA", "AP"), reports_dir=reports,
                              image_size=16)
    assert len(frontal) == 2
    assert frontal[0]["labels"][frontal.classes.index("No Finding")] == 1.0
    assert frontal[1]["labels"][frontal.classes.index("Pneumonia")] == 1.0  # U-ones
    assert frontal[1]["text"][0] == "Possible right lower lobe pneumonia."
    test = MIMICCXRDataset(tmp_path, tmp_path / "chexpert.csv", split_csv=tmp_path / "split.csv",
                           official_split="test", image_size=16, uncertain="negative")
    assert [r.path.parent.name for r in test.records] == ["s57375967"] and test[0]["labels"].sum() == 0
    with pytest.raises(ConfigError, match="views needs metadata_csv"):
        MIMICCXRDataset(tmp_path, tmp_path / "chexpert.csv", split_csv=tmp_path / "split.csv", views=("PA",))


def test_dicom_read_errors_are_read_errors_in_datasets(tmp_path):
    (tmp_path / "x.dcm").write_bytes(b"not a dicom at all" * 10)
    (tmp_path / "m.csv").write_text("path,labels\nx.dcm,Edema\n")
    ds = CXRManifestDataset(tmp_path / "m.csv", image_size=16)
    with pytest.raises(ReadError, match=file_key(tmp_path / "x.dcm")) as caught:
        ds[0]
    assert caught.value.path == str(tmp_path / "x.dcm") and "x.dcm" not in str(caught.value)


def test_radiograph_augmentation_runs_before_normalisation_and_is_seeded_per_item(folder):
    import facetvlp.domains.medical.transforms  # noqa: F401  (registers RadiographAugmentd)

    augment = [{"type": "RadiographAugmentd", "rotate_deg": 10.0, "gamma": (0.7, 1.3)}]
    ds = CXRFolderDataset(folder, image_size=32, transforms=augment, seed=3)
    plain = CXRFolderDataset(folder, image_size=32)
    first, again = ds[5]["image"], ds[5]["image"]
    assert torch.equal(first, again)  # same (seed, epoch, index): same draw, in any worker
    assert not torch.equal(first, plain[5]["image"])
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["image"], first)
    # gamma on a normalised (negative-valued) image would give NaN: it must see [0, 1] values
    assert torch.isfinite(first).all() and type(first) is torch.Tensor
