# Runtime defaults every config inherits: bf16 autocast where the device runs bf16 natively
# (else fp32), a checkpoint every 10 minutes, warmup + cosine, AdamW.
engine = dict(
    precision="auto",
    grad_accum=1,
    clip_grad=1.0,
    mask_ratio=0.0,
    grad_checkpointing=False,
    compile=False,
    seed=0,
    deterministic=False,
    strategy="ddp",
    log_every=10,
    ckpt_every=0,
    ckpt_every_minutes=10,
    keep_checkpoints=2,
    eval_at_end=True,
)
optim = dict(lr=5e-4, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
schedule = dict(max_steps=1000, warmup_steps=50, min_lr_ratio=0.0)
