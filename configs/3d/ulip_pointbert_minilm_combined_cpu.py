# Both objectives at once: class captions and descriptions (MultiPositiveLoss, as the caption
# recipe) plus the attribute vocabulary (QueryLoss, as the attribute recipe). Unseen classes are
# prompted with their attributes, seen classes with names and descriptions.
#   facetvlp train configs/3d/ulip_pointbert_minilm_combined_cpu.py
_base_ = ["./ulip_pointbert_minilm_attributes_cpu.py"]

loss = dict(_delete_=True, type="CombinedLoss", losses=[
    dict(type="MultiPositiveLoss", pairs=[("points", "text")]),
    dict(type="QueryLoss", pairs=[("points", "query")]),
])
named = dict(type="ShapeKnowledge", kind="object", prompts="both")
unseen = ["desk", "night_stand", "sofa"]
seen = ["bathtub", "bed", "chair", "dresser", "monitor", "table", "toilet"]
attributes = dict(type="ShapeKnowledge", kind="object", prompts="attributes")
_eval_dataset = dict(type="ShapeFolderDataset", root="../shared/data/pointcloud/modelnet10_train",
                     num_points=1024, knowledge=attributes)
eval = [
    dict(type="ZeroShotClassification", name="unseen", modality="points", knowledge=attributes,
         dataset=dict(_eval_dataset, classes=unseen, split="all")),
    dict(type="ZeroShotClassification", name="seen_val", modality="points", knowledge=named,
         dataset=dict(_eval_dataset, classes=seen, split="val")),
    dict(type="ZeroShotClassification", name="all10_val", modality="points", knowledge=attributes,
         dataset=dict(_eval_dataset, classes=seen + unseen, split="val")),
]
work_dir = "work_dirs/3d/ulip_pointbert_minilm_combined_cpu"
