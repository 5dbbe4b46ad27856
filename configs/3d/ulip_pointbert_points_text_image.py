# Full ULIP triplets for a GPU: each ModelNet10 shape gives points, its captions, and a depth view
# rendered from a random azimuth. The point tower is pulled toward the frozen text embeddings and
# toward the image tower's embedding of the view. Give the image tower local timm weights (e.g. a
# CLIP ViT image tower) and freeze it, as ULIP does; without weights it trains from scratch
# alongside the point tower.
#   facetvlp train configs/3d/ulip_pointbert_points_text_image.py \
#       --set model.towers.image.checkpoint=/path/vit.safetensors --set model.trainable.image=none
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

model = dict(
    towers=dict(
        points=dict(type="PointBERTTower", width=384, depth=12, heads=6, num_groups=64,
                    group_size=32, encoder_hidden=(128, 256), pool="cls+max",
                    drop_path_rate=0.1, _delete_=True),
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=224,
                   checkpoint=None),
    ),
    proj=dict(points="mlp", text="none", image="linear"),
    trainable=dict(image="all"),
)
loss = dict(type="MultiPositiveLoss", pairs=[("points", "text"), ("points", "image")])
train_data = dict(dataset=dict(with_image=dict(size=224)), batch_size=128, num_workers=8)
optim = dict(lr=5e-4, weight_decay=0.05)
schedule = dict(max_steps=5000, warmup_steps=250)
engine = dict(threads=None, log_every=50, ckpt_every=1000)  # precision "auto" (base)
work_dir = "work_dirs/3d/ulip_pointbert_points_text_image"
