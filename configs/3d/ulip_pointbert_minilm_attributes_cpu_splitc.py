# Split C: the three held-out classes drawn at random, fixed before any run on it:
#   sorted(random.Random(2026).sample(modelnet10_classes, 3)) = bed, monitor, toilet
#   facetvlp train configs/3d/ulip_pointbert_minilm_attributes_cpu_splitc.py
_base_ = ["./ulip_pointbert_minilm_attributes_cpu_splitb.py"]

unseen = ["bed", "monitor", "toilet"]
seen = ["bathtub", "chair", "desk", "dresser", "night_stand", "sofa", "table"]
train_data = dict(dataset=dict(classes=seen))
attributes = dict(type="ShapeKnowledge", kind="object", prompts="attributes")
_eval_dataset = dict(type="ShapeFolderDataset", root="../shared/data/pointcloud/modelnet10_train",
                     num_points=1024, knowledge=attributes)
eval = [
    dict(type="ZeroShotClassification", name="unseen", modality="points", knowledge=attributes,
         dataset=dict(_eval_dataset, classes=unseen, split="all")),
    dict(type="ZeroShotClassification", name="seen_val", modality="points", knowledge=attributes,
         dataset=dict(_eval_dataset, classes=seen, split="val")),
    dict(type="ZeroShotClassification", name="all10_val", modality="points", knowledge=attributes,
         dataset=dict(_eval_dataset, classes=seen + unseen, split="val")),
]
work_dir = "work_dirs/3d/ulip_pointbert_minilm_attributes_cpu_splitc"
