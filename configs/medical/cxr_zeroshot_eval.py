# Zero-shot evaluation of a checkpoint trained with cxr_faceted_pretrain_mimic.py (or its
# variants; keep the model section in step with the one you trained):
#   facetvlp eval configs/medical/cxr_zeroshot_eval.py --checkpoint work_dirs/medical/cxr_faceted_pretrain_mimic
# CheXpert validation: multi-label AUC for the five competition observations, each scored as
# P(positive prompt | positive vs negative prompt) with knowledge-expanded prompts; pneumonia
# validation split: binary accuracy / AUC with label prompts and with knowledge prompts.
_base_ = ["./cxr_faceted_pretrain_mimic.py"]

_plain = dict(type="CXRFolderDataset", root="../shared/data/medical/cxr_pneumonia_train", split="val", text="label",
              group_pattern=r"^(person\d+|(?:NORMAL2-)?IM-\d+)", image_size=224, channels=3)
eval = [
    dict(type="ZeroShotClassification", name="chexpert5", multilabel=True, knowledge=dict(type="CXRKnowledge"),
         dataset=dict(type="CheXpertDataset", csv_path="data/chexpert/CheXpert-v1.0-small/valid.csv",
                      root="data/chexpert", frontal_only=True, text="label", image_size=224, channels=3,
                      classes=["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"])),
    dict(type="ZeroShotClassification", name="pneumonia_label_prompts", dataset=_plain,
         templates=["a chest x-ray showing {}"]),
    dict(type="ZeroShotClassification", name="pneumonia_knowledge_prompts", dataset=_plain,
         knowledge=dict(type="CXRKnowledge")),
]
work_dir = "work_dirs/medical/cxr_zeroshot_eval"
