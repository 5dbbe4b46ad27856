# The zero-shot CPU run on a second split, fixed before it was ever trained: the three classes
# that split A neither held out nor used as their counterparts' nearest seen class.
#   facetvlp train configs/3d/ulip_pointbert_minilm_zeroshot_cpu_splitb.py
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

unseen = ["bathtub", "monitor", "toilet"]
seen = ["bed", "chair", "desk", "dresser", "night_stand", "sofa", "table"]
train_data = dict(dataset=dict(classes=seen))
_eval_dataset = dict(type="ShapeFolderDataset", root="../shared/data/pointcloud/modelnet10_train",
                     num_points=1024,
                     knowledge=dict(type="ShapeKnowledge", kind="object", prompts="both"))
eval = [
    dict(type="ZeroShotClassification", name="unseen", modality="points",
         knowledge=dict(type="ShapeKnowledge", kind="object", prompts="describe"),
         dataset=dict(_eval_dataset, classes=unseen, split="all")),
    dict(type="ZeroShotClassification", name="seen_val", modality="points",
         knowledge=dict(type="ShapeKnowledge", kind="object", prompts="both"),
         dataset=dict(_eval_dataset, classes=seen, split="val")),
    dict(type="ZeroShotClassification", name="all10_val", modality="points",
         knowledge=dict(type="ShapeKnowledge", kind="object", prompts="both"),
         dataset=dict(_eval_dataset, classes=seen + unseen, split="val")),
]
work_dir = "work_dirs/3d/ulip_pointbert_minilm_zeroshot_cpu_splitb"
