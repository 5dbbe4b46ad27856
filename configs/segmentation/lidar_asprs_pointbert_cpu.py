# Per-point ASPRS class segmentation (ground 2, high vegetation 5, building 6) of 10 m tiles cut
# from a classified airborne LiDAR file, sized for one CPU core. The point tower is the one of
# configs/3d/ulip_pointbert_tiny_cpu.py (PointBERT width 64, depth 2, 16 groups of 16), so that
# pre-training checkpoint loads by name:
#   facetvlp finetune configs/segmentation/lidar_asprs_pointbert_cpu.py --from WORK_DIR
# Splits and label fractions are drawn per tile (a stable hash of file name and tile).
_base_ = ["../_base_/segmentation_runtime.py"]

_las = "../shared/data/pointcloud/lidar_las/file_with_both_wkt_and_geotiff_vlrs.las"
_data = dict(type="LidarTileDataset", files=[_las], tile_size=10.0, classes=(2, 5, 6), num_points=1024)

model = dict(
    type="PointSegmentationModel",
    towers=dict(points=dict(type="PointBERTTower", width=64, depth=2, heads=2, num_groups=16,
                            group_size=16, encoder_hidden=(32, 64), pool="cls+max")),
    head=dict(type="PointFPHead", hidden=64),
    num_classes=3,
    levels=2,
    encoder="full",
)
train_data = dict(
    dataset=dict(type="LabelFraction", dataset=dict(_data, split="train"), fraction=1.0, seed=0),
    batch_size=2,  # 10 % of the training tiles is 2 tiles: one batch must fit it
    num_workers=0,
)
eval = dict(seg=dict(type="SegmentationEvaluator", dataset=dict(_data, split="val"),
                     include_background=True))
schedule = dict(max_steps=100, warmup_steps=10)
engine = dict(threads=1, log_every=10, seed=0)
work_dir = "work_dirs/segmentation/lidar_asprs_pointbert_cpu"
