# Lung segmentation on real radiographs (Montgomery + Shenzhen masks, ../shared/data/medical/
# cxr_lung_masks), sized for CPU: ResNet-10t (the image tower of pneumonia_*_tiny_cpu.py, one
# channel, 128 px) + light FPN head, Dice + CE. Held-apart split: 20 % of patients (hash of the
# patient id), never trained on. Random initialisation:
#   facetvlp finetune configs/medical/lung_seg_resnet10t_tiny_cpu.py
# From a pre-training run of the same tower (e.g. pneumonia_faceted_tiny_cpu.py):
#   facetvlp finetune configs/medical/lung_seg_resnet10t_tiny_cpu.py --from work_dirs/pneumonia_faceted_tiny_cpu
# Fewer labels: lung_seg_resnet10t_tiny_cpu_10pct.py (LabelFraction of the training patients).
_base_ = ["../_base_/segmentation_runtime.py"]

_root = "../shared/data/medical/cxr_lung_masks"
_data = dict(type="MaskPairDataset", root=_root, image_dir="cxr", mask_dirs=["masks"],
             seg_classes=["background", "lung"], image_size=128, channels=1)

model = dict(
    type="SegmentationModel",
    towers=dict(image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1)),
    head=dict(type="FPNHead", channels=64),
    num_classes=2,
    levels=4,
    encoder="full",
)
train_data = dict(dataset=dict(**_data, split="train", on_error="skip"), batch_size=16, num_workers=0)
# one learning rate for encoder and head, so random and pre-trained starts share every setting
optim = dict(lr=2e-3, weight_decay=0.05, paramwise=dict(encoder_lr_mult=1.0, layer_decay=1.0))
schedule = dict(max_steps=300, warmup_steps=20)
engine = dict(log_every=10, seed=0)
eval = dict(lung=dict(type="SegmentationEvaluator", dataset=dict(**_data, split="val"),
                      include_background=False, batch_size=16))
work_dir = "work_dirs/lung_seg_resnet10t_tiny_cpu"
