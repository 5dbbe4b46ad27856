# Both objectives at once: class captions and descriptions (MultiPositiveLoss, as the caption
# recipe) plus the attribute vocabulary (QueryLoss, as the attribute recipe). Unseen classes are
# prompted with their attributes, seen classes with names and descriptions.
#   facetvlp train configs/3d/ulip_pointbert_minilm_combined_cpu.py
_base_ = ["./ulip_pointbert_minilm_attributes_cpu.py"]

loss = dict(_delete_=True, type="CombinedLoss", losses=[
    dict(type="MultiPositiveLoss", pairs=[("points", "text")]),
    dict(type="QueryLoss", pairs=[("points", "query")]),
])
eval = dict(seen_val=dict(knowledge=dict(prompts="both")))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_combined_cpu"
