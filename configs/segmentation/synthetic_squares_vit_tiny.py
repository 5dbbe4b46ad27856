# Segmentation smoke run on generated squares: no files needed.
# `facetvlp finetune configs/segmentation/synthetic_squares_vit_tiny.py [--from CHECKPOINT]`
# (CHECKPOINT: e.g. the work dir of `facetvlp train configs/synthetic_tiny.py`, same image tower).
_base_ = ["../_base_/segmentation_runtime.py"]

model = dict(
    type="SegmentationModel",
    # dynamic_img_size: the ViT runs at any input size (position embeddings interpolated)
    towers=dict(image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=64,
                           dynamic_img_size=True)),
    head=dict(type="UPerNetHead", channels=64),
    num_classes=2,
    encoder="full",
)
train_data = dict(dataset=dict(type="SyntheticSegmentation", size=64, image_size=64),
                  batch_size=8, num_workers=0)
schedule = dict(max_steps=40, warmup_steps=4)
engine = dict(log_every=5)
eval = dict(seg=dict(type="SegmentationEvaluator",
                     dataset=dict(type="SyntheticSegmentation", size=16, image_size=64, seed=1),
                     include_background=False))
work_dir = "work_dirs/synthetic_squares_vit_tiny"
