# Zero-shot lung localisation before any fine-tuning: where does a pre-trained CXR model put
# "lung"? The model is the one configs/medical/pneumonia_faceted_tiny_cpu.py trains; its MaskCLIP-style
# dense embeddings (ResNet cells through the image projection) are compared with the prompt
# embeddings and scored against the real lung masks of the held-apart split of
# configs/segmentation/lung_cxr_resnet10t_cpu.py, beside a centre prior. Evaluate a pre-training run:
#   facetvlp eval configs/grounding/lung_zeroshot_localization.py --checkpoint work_dirs/PRETRAIN
_base_ = ["../medical/pneumonia_faceted_tiny_cpu.py"]

eval = [
    dict(type="ZeroShotLocalization", name="lung_zeroshot",
         dataset=dict(type="MaskPairDataset", root="../shared/data/medical/cxr_lung_masks", split="val",
                      image_size=128, channels=1),
         classes=["lung"],
         templates=["a chest x-ray of the {}s", "the {} fields on a chest radiograph", "{}"]),
]
work_dir = "work_dirs/grounding/lung_zeroshot_localization"
