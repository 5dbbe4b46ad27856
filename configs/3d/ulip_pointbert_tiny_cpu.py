# Tiny CPU smoke variant of the zero-shot run: same model family, a few steps, small eval sets.
# Checks the whole path (read -> sample -> collate -> towers -> loss -> engine -> eval) in about
# a minute of CPU:  facetvlp train configs/3d/ulip_pointbert_tiny_cpu.py
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

model = dict(towers=dict(points=dict(width=64, depth=2, heads=2, num_groups=16, group_size=16)))
train_data = dict(dataset=dict(max_per_class=40), batch_size=16)
_small = dict(type="ShapeFolderDataset", root="../shared/data/pointcloud/modelnet10_train",
              num_points=1024, max_per_class=20,
              knowledge=dict(type="ShapeKnowledge", kind="object", descriptions=True))
eval = [
    dict(type="ZeroShotClassification", name="unseen", modality="points",
         knowledge=dict(type="ShapeKnowledge"),
         dataset=dict(_small, classes=["desk", "night_stand", "sofa"], split="all")),
]
schedule = dict(max_steps=20, warmup_steps=2)
work_dir = "work_dirs/3d/ulip_pointbert_tiny_cpu"
