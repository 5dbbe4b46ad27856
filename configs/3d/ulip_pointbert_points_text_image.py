# Full ULIP triplets for a GPU: each ModelNet10 shape gives points, its captions, and a depth view
# rendered from a random azimuth. The point tower is pulled toward the frozen text embeddings and
# toward the image tower's embedding of the view. As in ULIP, the image-text teacher is frozen
# (text: the base config's FrozenTextCache; image: trainable="none" below) and only the point
# tower and the projections learn. A frozen image tower needs real weights: give it local timm
# weights (e.g. a CLIP ViT image tower); without them it is a fixed random target.
# The point tower has Point-BERT's layout (BatchNorm encoder, reduce_dim 256 -> 384, bias-free
# qkv), so a published Point-BERT / ULIP point encoder can start it:
#   facetvlp train configs/3d/ulip_pointbert_points_text_image.py \
#       --set model.towers.image.checkpoint=/path/vit.safetensors \
#       --set model.towers.points.checkpoint=/path/ulip_pointbert.pt
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

model = dict(
    towers=dict(
        points=dict(type="PointBERTTower", width=384, depth=12, heads=6, num_groups=64,
                    group_size=32, encoder_hidden=(128, 256), pool="cls+max",
                    encoder_style="pointbert", encoder_width=256, qkv_bias=False,
                    drop_path_rate=0.1, _delete_=True),
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=224,
                   checkpoint=None),
    ),
    proj=dict(points="mlp", text="none", image="linear"),
    trainable=dict(image="none"),
)
loss = dict(type="MultiPositiveLoss", pairs=[("points", "text"), ("points", "image")])
train_data = dict(dataset=dict(with_image=dict(size=224)), batch_size=128, num_workers=8)
optim = dict(lr=5e-4, weight_decay=0.05)
schedule = dict(max_steps=5000, warmup_steps=250)
engine = dict(threads=None, log_every=50, ckpt_every=1000)  # precision "auto" (base)
work_dir = "work_dirs/3d/ulip_pointbert_points_text_image"
