# Faceted pre-training on MIMIC-CXR-JPG (GPU-sized): each image's text is sampled from its report
# sentences (FINDINGS + IMPRESSION) and from the knowledge facets of its CheXpert labels; images
# that share labels are soft positives (MultiPositiveLoss); the MiniLM-L6 text tower is tuned.
# Zero-shot evaluation: the CheXpert validation set (five competition observations, each scored
# positive-vs-negative prompt) and the pneumonia set's fixed validation split.
# Point the paths at your copies (credentialed PhysioNet / Stanford downloads), e.g.
#   facetvlp train configs/medical/cxr_faceted_pretrain_mimic.py \
#       --set train_data.dataset.root=/data/mimic-cxr-jpg/2.0.0
# or torchrun --nproc-per-node 8 -m facetvlp.cli train ... for several GPUs.
_base_ = ["../_base_/default_runtime.py", "../_base_/clip_vit_tiny_minilm.py"]

_mimic = "data/mimic-cxr-jpg/2.0.0"
_mimic_reports = "data/mimic-cxr-reports"
_chexpert = "data/chexpert"
_pneumonia = "../shared/data/medical/cxr_pneumonia_train"
_knowledge = dict(type="CXRKnowledge")
_image = dict(image_size=224, channels=3)
_competition = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]

model = dict(trainable=dict(text="all"))
loss = dict(type="MultiPositiveLoss")
train_data = dict(
    dataset=dict(type="MIMICCXRDataset", root=_mimic, chexpert_csv=_mimic + "/mimic-cxr-2.0.0-chexpert.csv.gz",
                 metadata_csv=_mimic + "/mimic-cxr-2.0.0-metadata.csv.gz",
                 split_csv=_mimic + "/mimic-cxr-2.0.0-split.csv.gz", official_split="train", views=["PA", "AP"],
                 reports_dir=_mimic_reports, text="facets", knowledge=_knowledge, uncertain="positive",
                 # small rotation/zoom/shift/gamma, never a left-right flip (see docs/medical_dicom.md)
                 transforms=[dict(type="RadiographAugmentd")], on_error="skip", **_image),
    batch_size=256,
    num_workers=8,
)
eval = [
    dict(type="ZeroShotClassification", name="chexpert5", multilabel=True, knowledge=_knowledge,
         dataset=dict(type="CheXpertDataset", csv_path=_chexpert + "/CheXpert-v1.0-small/valid.csv", root=_chexpert,
                      classes=_competition, frontal_only=True, text="label", **_image)),
    dict(type="ZeroShotClassification", name="pneumonia", knowledge=_knowledge,
         dataset=dict(type="CXRFolderDataset", root=_pneumonia, split="val", text="label",
                      group_pattern=r"^(person\d+|(?:NORMAL2-)?IM-\d+)", **_image)),
]
optim = dict(lr=5e-4, weight_decay=0.2)
schedule = dict(max_steps=20000, warmup_steps=1000)
engine = dict(mask_ratio=0.5, ckpt_every=1000)  # precision "auto" (base)
work_dir = "work_dirs/medical/cxr_faceted_pretrain_mimic"
