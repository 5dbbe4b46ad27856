# Split C, drawn at random and fixed before any run on it:
#   sorted(random.Random(2026).sample(modelnet10_classes, 3)) = bed, monitor, toilet
# The class-name recipe of ulip_pointbert_minilm_names_cpu.py on it:
#   facetvlp train configs/3d/ulip_pointbert_minilm_names_cpu_splitc.py
_base_ = ["./ulip_pointbert_minilm_names_cpu.py"]

_unseen = ["bed", "monitor", "toilet"]
_seen = ["bathtub", "chair", "desk", "dresser", "night_stand", "sofa", "table"]
train_data = dict(dataset=dict(classes=_seen))
eval = dict(unseen=dict(dataset=dict(classes=_unseen)),
            unseen_names=dict(dataset=dict(classes=_unseen)),
            seen_val=dict(dataset=dict(classes=_seen)),
            all10_val=dict(dataset=dict(classes=_seen + _unseen)))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_names_cpu_splitc"
