# Engine smoke run on generated data: no files needed. `facetvlp train configs/synthetic_tiny.py`
_base_ = ["_base_/default_runtime.py", "_base_/clip_vit_tiny_minilm.py"]

model = dict(towers=dict(image=dict(image_size=64)))
train_data = dict(
    dataset=dict(type="SyntheticImageText", size=64, image_size=64),
    batch_size=8,
    num_workers=0,
)
schedule = dict(max_steps=6, warmup_steps=2)
engine = dict(log_every=2, ckpt_every=3)
work_dir = "work_dirs/synthetic_tiny"
eval = [
    dict(type="ZeroShotClassification",
         dataset=dict(type="SyntheticImageText", size=48, image_size=64, seed=1),
         templates=["a {} picture", "an image that is mostly {}"]),
    dict(type="Retrieval", dataset=dict(type="SyntheticImageText", size=48, image_size=64, seed=1)),
]
