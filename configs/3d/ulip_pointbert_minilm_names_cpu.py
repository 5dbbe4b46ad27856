# The class-name baseline of ulip_pointbert_minilm_zeroshot_cpu.py at the same budget (issue 15):
# every training cloud is captioned with its class name in the object templates only (no shape
# descriptions). Model, data, steps, seed and evaluators are the same, so "unseen" scores these
# models with the description prompts and "unseen_names" with the name prompts, as for the
# knowledge recipe.
#   facetvlp train configs/3d/ulip_pointbert_minilm_names_cpu.py
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

_names = dict(type="ShapeKnowledge", kind="object", descriptions=False, prompts="name")
train_data = dict(dataset=dict(knowledge=_names))
eval = dict(seen_val=dict(knowledge=_names), all10_val=dict(knowledge=_names))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_names_cpu"
