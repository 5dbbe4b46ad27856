# Attribute-based zero-shot on ModelNet10 (split A: desk, night_stand, sofa held out).
# The point tower learns a shared vocabulary of geometric attribute statements (QueryLoss,
# KAD-style multi-label targets) from the seven seen classes; every class is then prompted with
# its own attributes, embedded by the frozen MiniLM. Same tower, data, steps and seed as
# ulip_pointbert_minilm_zeroshot_cpu.py, so the two recipes compare directly.
#   facetvlp train configs/3d/ulip_pointbert_minilm_attributes_cpu.py
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

_attributes = dict(type="ShapeKnowledge", kind="object", prompts="attributes")
model = dict(init_logit_scale=2.302585, init_logit_bias=-1.0)  # scale 10; ~30% positives
loss = dict(_delete_=True, type="QueryLoss", pairs=[("points", "query")])
train_data = dict(dataset=dict(knowledge=_attributes, attribute_queries=True))
eval = dict(unseen=dict(knowledge=_attributes), seen_val=dict(knowledge=_attributes),
            all10_val=dict(knowledge=_attributes))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_attributes_cpu"
