# Building segmentation on the Kampala drone chips (OpenAerialMap, zoom 20 and 21, OSM footprints
# rasterised to binarymasks/*.mask.tif), sized for one CPU core. The image tower is the one of
# configs/remote_sensing/osm_captions_tiny_cpu.py (ResNet-18, MLP projection), so that
# pre-training checkpoint loads by name:
#   facetvlp finetune configs/segmentation/kampala_buildings_resnet18_cpu.py --from WORK_DIR
# Splits and label fractions are drawn per zoom-19 tile (group_zoom=19): every zoom of the same
# ground falls on one side, so no validation pixel is trained on at another pixel size.
_base_ = ["../_base_/segmentation_runtime.py"]

_kampala = "../shared/data/remote_sensing/kampala_chips_osm_buildings"
_data = dict(type="GeoSegDataset", scenes=_kampala + "/chips", seg_classes=["background", "building"],
             label_rasters=_kampala + "/binarymasks/{stem}.mask.tif", image_size=128, group_zoom=19)

model = dict(
    type="SegmentationModel",
    towers=dict(image=dict(type="TimmVisionTower", name="resnet18")),
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
                     include_background=True))
schedule = dict(max_steps=100, warmup_steps=10)
engine = dict(threads=1, log_every=10, seed=0)
work_dir = "work_dirs/segmentation/kampala_buildings_resnet18_cpu"
