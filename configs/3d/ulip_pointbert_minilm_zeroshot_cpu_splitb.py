# Split B, fixed before it was ever trained: the three classes that split A neither held out
# nor used as their counterparts' nearest seen class.
# The caption recipe of ulip_pointbert_minilm_zeroshot_cpu.py on it:
#   facetvlp train configs/3d/ulip_pointbert_minilm_zeroshot_cpu_splitb.py
_base_ = ["./ulip_pointbert_minilm_zeroshot_cpu.py"]

_unseen = ["bathtub", "monitor", "toilet"]
_seen = ["bed", "chair", "desk", "dresser", "night_stand", "sofa", "table"]
train_data = dict(dataset=dict(classes=_seen))
eval = dict(unseen=dict(dataset=dict(classes=_unseen)),
            unseen_names=dict(dataset=dict(classes=_unseen)),
            seen_val=dict(dataset=dict(classes=_seen)),
            all10_val=dict(dataset=dict(classes=_seen + _unseen)))
work_dir = "work_dirs/3d/ulip_pointbert_minilm_zeroshot_cpu_splitb"
