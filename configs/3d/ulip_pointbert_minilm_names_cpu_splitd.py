# Split D, drawn at random and fixed (committed) before any run on it:
#   sorted(random.Random(2027).sample(modelnet10_classes, 3)) = bed, sofa, toilet
# The class-name recipe of ulip_pointbert_minilm_names_cpu.py on it:
#   facetvlp train configs/3d/ulip_pointbert_minilm_names_cpu_splitd.py
_base_ = ["./ulip_pointbert_minilm_names_cpu.py"]

_unseen = ["bed", "sofa", "toilet"]
_seen = ["bathtub", "chair", "desk", "dresser", "monitor", "night_stand", "table"]
train_data = dict(dataset=dict(classes=_seen))
eval = dict(unseen=dict(dataset=dict(classes=_unseen)),
            unseen_names=dict(dataset=dict(classes=_unseen)),
            seen_val=dict(dataset=dict(classes=_seen)),
            all10_val=dict(dataset=dict(classes=_seen + _unseen)))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_names_cpu_splitd"
