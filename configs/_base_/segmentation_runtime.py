# Fine-tuning defaults for segmentation task models (inherit after default_runtime.py): the
# encoder at a tenth of the head's learning rate with layer-wise decay, no patch masking, fp32 on
# CPU-sized runs (bf16 autocast stays available with engine.precision="bf16").
_base_ = ["default_runtime.py"]

loss = dict(type="SegmentationLoss", dice_weight=1.0, ce_weight=1.0)
optim = dict(lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999),
             paramwise=dict(encoder_lr_mult=0.1, layer_decay=0.75))
schedule = dict(max_steps=500, warmup_steps=20, min_lr_ratio=0.0)
engine = dict(mask_ratio=0.0, precision="fp32")
