# The baseline of kampala_itm_mlm_tiny_cpu.py: the same model, data, split, steps and seed with the
# contrastive loss alone and no fusion encoder, so its plain retrieval shows what ITM + MLM
# training did to the embedding itself. Run from the repo root:
#   facetvlp train configs/fusion/kampala_clip_only_tiny_cpu.py
_base_ = ["./kampala_itm_mlm_tiny_cpu.py"]

model = dict(fusion=None)
loss = dict(_delete_=True, type="CLIPLoss")
eval = dict(kampala_heldout_retrieval=dict(itm_top_k=None))  # no fusion encoder to re-rank with
work_dir = "work_dirs/fusion/kampala_clip_only_tiny_cpu"
