# Lung segmentation on the NLM chest radiographs (Shenzhen + Montgomery, 178 image/mask pairs),
# sized for one CPU core. The image tower is the one of configs/medical/pneumonia_faceted_tiny_cpu.py
# (ResNet-10t, one input channel, MLP projection), so that pre-training checkpoint loads by name:
#   facetvlp finetune configs/segmentation/lung_cxr_resnet10t_cpu.py --from WORK_DIR_OF_PRETRAINING
# Without --from the tower starts from random weights. Validation: the patient-disjoint
# split="val" (31 images at 128 px, val_fraction=0.2, split_seed=0), never used to choose the budget.
# Labels: a seeded share of the training patients, e.g.
#   --set train_data.dataset.fraction=0.1 --set train_data.dataset.seed=1 --set engine.seed=1
_base_ = ["../_base_/segmentation_runtime.py"]

_root = "../shared/data/medical/cxr_lung_masks"
_data = dict(type="MaskPairDataset", root=_root, image_size=128, channels=1)

model = dict(
    type="SegmentationModel",
    towers=dict(image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1)),
    head=dict(type="FPNHead", channels=64),
    num_classes=2,
    encoder="full",
)
train_data = dict(
    dataset=dict(type="LabelFraction", dataset=dict(_data, split="train"), fraction=1.0, seed=0),
    batch_size=8,
    num_workers=0,
)
eval = dict(seg=dict(type="SegmentationEvaluator", dataset=dict(_data, split="val"),
                     include_background=False))
schedule = dict(max_steps=120, warmup_steps=10)
engine = dict(threads=1, log_every=10, seed=0)
work_dir = "work_dirs/segmentation/lung_cxr_resnet10t_cpu"
