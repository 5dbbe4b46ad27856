"""The medical demo runs on the bundled samples only, reports its headline metrics, and writes a
lung segmentation overlay and a DICOM-SEG that highdicom reads back onto its source."""

from __future__ import annotations

import json
import math

import highdicom as hd
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

from demo_support import figures_written_by_the_runs, run_domain_demo

from facetvlp.domains.medical.datasets import CXRFolderDataset
from facetvlp.domains.medical.demo import CLASSES, DATA, DICOM, LUNGS, demo_config, lung_seg_config
from facetvlp.domains.medical.mask_datasets import MaskPairDataset


def test_bundled_samples_and_provenance_are_there():
    files = {cls: sorted(p.name for p in (DATA / cls).glob("*.png")) for cls in CLASSES}
    assert len(files["normal"]) == 16 and len(files["tuberculosis"]) == 16
    assert all(name.endswith("_0.png") for name in files["normal"])  # the sets' own naming convention
    assert all(name.endswith("_1.png") for name in files["tuberculosis"])
    assert "MIT" in (DATA / "LICENCE_repo.txt").read_text()
    assert "rochadiego/MultiResUNet-lung-segmentation" in (DATA / "PROVENANCE.txt").read_text()


def test_lung_pairs_are_other_patients_than_the_pretraining_sample():
    pairs = sorted(p.name for p in (LUNGS / "cxr").glob("*.png"))
    assert len(pairs) == 24 and pairs == sorted(p.name for p in (LUNGS / "masks").glob("*.png"))
    pretraining = {p.name[:-len("_0.png")] for p in DATA.glob("*/*.png")}
    assert pretraining.isdisjoint(name[:-len("_0.png")] for name in pairs)
    assert "MIT" in (LUNGS / "LICENCE_repo.txt").read_text()
    assert "rochadiego/MultiResUNet-lung-segmentation" in (LUNGS / "PROVENANCE.txt").read_text()
    for name in pairs[:3]:  # a lung mask covers a fair part of a radiograph, never all of it
        lung = np.asarray(Image.open(LUNGS / "masks" / name)) > 127
        assert lung.shape == (128, 128) and 0.05 < lung.mean() < 0.6


def test_bundled_dicom_is_a_real_radiograph_with_its_provenance():
    header = pydicom.dcmread(DICOM, stop_before_pixels=True)
    assert header.Modality == "DX" and (header.Rows, header.Columns) == (1024, 1024)
    provenance = (DICOM.parent / "PROVENANCE.txt").read_text()
    assert "nihcc.app.box.com/v/ChestXray-NIHCC" in provenance and "NHSX" in provenance


def test_demo_splits_hold_patients_apart(tmp_path):
    cfg = demo_config(tmp_path)
    train = CXRFolderDataset(**{k: v for k, v in cfg.train_data.dataset.items() if k not in ("type",)})
    val = CXRFolderDataset(**{k: v for k, v in cfg.eval[0].dataset.items() if k not in ("type",)})
    assert len(train) + len(val) == 32
    assert {r.path.name for r in train.records}.isdisjoint(r.path.name for r in val.records)
    assert all(count > 0 for count in val.label_counts().values())
    seg = lung_seg_config(tmp_path)
    seg_train = MaskPairDataset(**{k: v for k, v in seg.train_data.dataset.items() if k != "type"})
    seg_val = MaskPairDataset(**{k: v for k, v in seg.eval.lung_seg.dataset.items() if k != "type"})
    assert len(seg_train) + len(seg_val) == 24 and len(seg_val) >= 4
    assert set(seg_train.names).isdisjoint(seg_val.names)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_domain_demo(tmp_path_factory, "medical")


@pytest.mark.slow
def test_run_demo_trains_evaluates_and_reports(demo_run):
    work_dir, headline = demo_run
    assert headline["tb_cxr/n"] == 9 and headline["lung_seg/n"] >= 4
    # every headline figure is the one its run wrote, under the name the step reports it by
    assert {k: v for k, v in headline.items() if k != "seconds"} == figures_written_by_the_runs(work_dir, "medical")
    assert math.isfinite(headline["train/loss"])
    saved = json.loads((work_dir / "headline.json").read_text())
    assert saved == {k: v for k, v in headline.items() if k != "seconds"}
    pretrain = json.loads((work_dir / "pretrain" / "metrics.json").read_text())
    assert pretrain["train/steps"] == demo_config(work_dir).schedule.max_steps
    assert pretrain["tb_cxr/top1"] == headline["tb_cxr/top1"]
    # the segmentation run started from the pre-trained tower (the key report is in its log)
    assert "encoder initialised from" in (work_dir / "lung_seg" / "run.log").read_text()


@pytest.mark.slow
def test_reported_dice_is_the_dice_of_the_fine_tuned_model(demo_run):
    """Recompute the held-apart Dice by hand from the saved checkpoint's predictions."""
    from facetvlp.demo import trained_model

    work_dir, headline = demo_run
    cfg = lung_seg_config(work_dir / "lung_seg")
    model = trained_model(cfg)
    val = MaskPairDataset(**{k: v for k, v in cfg.eval.lung_seg.dataset.items() if k != "type"})
    dices = []
    for i in range(len(val)):
        item = val[i]
        with torch.no_grad():
            pred = model.predict({"image": item["image"][None]})["seg"][0].numpy() == 1
        truth, valid = item["seg"].numpy() == 1, item["seg"].numpy() >= 0
        pred &= valid
        dices.append(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    assert headline["lung_seg/dice"] == pytest.approx(float(np.mean(dices)), abs=1e-4)


@pytest.mark.slow
def test_demo_writes_the_overlay_and_a_dicom_seg_on_its_source(demo_run):
    work_dir, _ = demo_run
    with Image.open(work_dir / "lung_seg" / "lung_seg_overlays.png") as overlay:
        assert overlay.width > 300 and overlay.height > 200
    outputs = json.loads((work_dir / "outputs.json").read_text())
    seg_path = work_dir / "lung_seg" / "lung_seg.dcm"
    assert str(seg_path) in outputs.values()
    seg = hd.seg.segread(seg_path)
    source = pydicom.dcmread(DICOM)
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == ["lung"]
    lungs = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True,
                                              ignore_spatial_locations=True)[0]
    assert lungs.shape == (source.Rows, source.Columns)
    assert lungs.any()  # the model found lungs on a radiograph it never saw
