# The baseline of kampala_itm_mlm_tiny_cpu.py: the same model, data, split, steps and seed with the
# contrastive loss alone and no fusion encoder, so its plain retrieval shows what ITM + MLM
# training did to the embedding itself. Run from the repo root:
#   facetvlp train configs/fusion/kampala_clip_only_tiny_cpu.py
_base_ = ["./kampala_itm_mlm_tiny_cpu.py"]

model = dict(fusion=None)
loss = dict(_delete_=True, type="CLIPLoss")
eval = [
    dict(type="Retrieval", name="kampala_heldout_retrieval",
         dataset=dict(type="OSMCaptionPairs",
                      scenes="../shared/data/remote_sensing/kampala_chips_osm_buildings/chips/OAM-123844[89]-*-21.tif",
                      tile_size=128, languages=["en"], image_size=64,
                      osm="../shared/data/remote_sensing/kampala_chips_osm_buildings/chips_labels.geojson",
                      default_tags=dict(building="yes"), cache_dir="work_dirs/cache/osm_pairs")),
]
work_dir = "work_dirs/fusion/kampala_clip_only_tiny_cpu"
