# The attribute recipe on split B (bathtub, monitor, toilet held out), where the caption recipe
# was at chance. Fixed, like the attribute vocabulary, before either attribute run.
#   facetvlp train configs/3d/ulip_pointbert_minilm_attributes_cpu_splitb.py
_base_ = ["./ulip_pointbert_minilm_attributes_cpu.py"]

unseen = ["bathtub", "monitor", "toilet"]
seen = ["bed", "chair", "desk", "dresser", "night_stand", "sofa", "table"]
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
work_dir = "work_dirs/3d/ulip_pointbert_minilm_attributes_cpu_splitb"
