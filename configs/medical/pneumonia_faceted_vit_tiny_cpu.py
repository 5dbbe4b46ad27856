# The faceted pneumonia pre-training of pneumonia_faceted_tiny_cpu.py with a ViT-Tiny image tower
# (patch 16, 128 px, one channel): the VLP ViT whose blocks start the transformer of UNETR in
# configs/segmentation/ct_organs_unetr_cpu.py. Same data, loss, text tower and budget.
#   facetvlp train configs/medical/pneumonia_faceted_vit_tiny_cpu.py
_base_ = ["pneumonia_faceted_tiny_cpu.py"]

model = dict(towers=dict(image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224",
                                    image_size=128, in_chans=1)))
work_dir = "work_dirs/medical/pneumonia_faceted_vit_tiny_cpu"
