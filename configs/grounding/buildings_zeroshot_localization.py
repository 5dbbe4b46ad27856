# Zero-shot building localisation before any fine-tuning: where does the OSM-caption pre-trained
# remote-sensing model put "building"? The model is the one configs/remote_sensing/osm_captions_tiny_cpu.py
# trains (ResNet-18, frozen MiniLM-L6, MLP image projection); benchmarks/grounding_finetune.py pre-trains
# it on the *western* zoom-21 chips only (work_dirs/grounding/sweep/kampala_pretrain). Its MaskCLIP-style
# dense embeddings (ResNet cells through the image projection) are compared with OSM-preset prompts for
# "building" (OSMSceneKnowledge) and scored against the rasterised OSM building masks of the held-apart
# eastern chips (the zoom-19 tiles x=309614, as in kampala_buildings_tiny_cpu.py), beside a centre prior.
# Zoom-21 chips (0.075 m/px) at 128 px and zoom-20 chips (0.15 m/px) at 256 px both give 0.15 m per
# input pixel, the ground pixel size of the pre-training (128 px zoom-21 tiles resized to 64 px).
#   facetvlp eval configs/grounding/buildings_zeroshot_localization.py --checkpoint work_dirs/grounding/sweep/kampala_pretrain
_base_ = ["../remote_sensing/osm_captions_tiny_cpu.py"]

_chips = "../shared/data/remote_sensing/kampala_chips_osm_buildings/chips/"
_east_z21 = [
    "OAM-1238456-1046528-21.tif",
    "OAM-1238456-1046529-21.tif",
    "OAM-1238456-1046530-21.tif",
    "OAM-1238456-1046531-21.tif",
    "OAM-1238456-1046532-21.tif",
    "OAM-1238456-1046533-21.tif",
    "OAM-1238456-1046534-21.tif",
    "OAM-1238456-1046535-21.tif",
    "OAM-1238457-1046528-21.tif",
    "OAM-1238457-1046529-21.tif",
    "OAM-1238457-1046530-21.tif",
    "OAM-1238457-1046531-21.tif",
    "OAM-1238457-1046532-21.tif",
    "OAM-1238457-1046533-21.tif",
    "OAM-1238457-1046534-21.tif",
    "OAM-1238457-1046535-21.tif",
    "OAM-1238458-1046530-21.tif",
    "OAM-1238458-1046533-21.tif",
    "OAM-1238458-1046534-21.tif",
    "OAM-1238458-1046535-21.tif",
    "OAM-1238459-1046529-21.tif",
    "OAM-1238459-1046532-21.tif",
    "OAM-1238459-1046533-21.tif",
    "OAM-1238459-1046534-21.tif",
]
_east_z20 = [
    "OAM-619228-523264-20.tif",
    "OAM-619228-523265-20.tif",
    "OAM-619228-523266-20.tif",
    "OAM-619228-523267-20.tif",
    "OAM-619229-523264-20.tif",
    "OAM-619229-523265-20.tif",
    "OAM-619229-523266-20.tif",
    "OAM-619229-523267-20.tif",
]
_seg = dict(type="GeoSegDataset", seg_classes=["background", "building"],
            label_rasters="../shared/data/remote_sensing/kampala_chips_osm_buildings/binarymasks/{stem}.mask.tif")
_knowledge = dict(type="OSMSceneKnowledge")

eval = [
    dict(type="ZeroShotLocalization", name="buildings_z21_zeroshot", classes=["building"], knowledge=_knowledge,
         dataset=dict(_seg, scenes=[_chips + n for n in _east_z21], image_size=128)),
    dict(type="ZeroShotLocalization", name="buildings_z20_zeroshot", classes=["building"], knowledge=_knowledge,
         dataset=dict(_seg, scenes=[_chips + n for n in _east_z20], image_size=256)),
]
work_dir = "work_dirs/grounding/buildings_zeroshot_localization"
