"""Small configs and subprocess runners shared by the engine tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# fp32 so that runs compare bit for bit on any CPU (precision "auto" may pick bf16).
TINY_CONFIG = """
_base_ = [{runtime!r}, {model!r}]
model = dict(towers=dict(image=dict(image_size=32, drop_path_rate={drop_path})), embed_dim=64)
train_data = dict(dataset=dict(type="SyntheticImageText", size={size}, image_size=32, augment={augment}),
                  batch_size={batch}, num_workers=0, shuffle=True)
schedule = dict(max_steps={steps}, warmup_steps=1)
optim = dict(lr=1e-3)
engine = dict(precision="fp32", seed=3, deterministic=True, log_every=1, ckpt_every={ckpt_every},
              keep_checkpoints=50, tensorboard=False, eval_at_end=False, clip_grad=1.0, threads=1,
              mask_ratio={mask_ratio})
work_dir = {work_dir!r}
"""


def write_config(folder: Path, work_dir: Path, batch: int, steps: int, ckpt_every: int = 0,
                 size: int = 64, augment: bool = False, mask_ratio: float = 0.0,
                 drop_path: float = 0.0, extra: str = "") -> Path:
    """A tiny ViT-Tiny + MiniLM run on SyntheticImageText (32 px); `extra` is appended."""
    path = folder / f"tiny_{work_dir.name}_b{batch}_s{steps}.py"
    path.write_text(TINY_CONFIG.format(
        runtime=str(REPO / "configs/_base_/default_runtime.py"),
        model=str(REPO / "configs/_base_/clip_vit_tiny_minilm.py"),
        batch=batch, steps=steps, ckpt_every=ckpt_every, work_dir=str(work_dir), size=size,
        augment=augment, mask_ratio=mask_ratio, drop_path=drop_path) + extra)
    return path


def env() -> dict[str, str]:
    e = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             PYTHONUNBUFFERED="1")
    return e


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "facetvlp.cli", *args]


def torchrun(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "facetvlp.cli", *args]


def run(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def losses(work_dir: Path) -> list[float]:
    lines = (work_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


ACCUM_CONFIG = """
_base_ = [{runtime!r}]
model = dict(type="ContrastiveModel", embed_dim=32, init_logit_bias={bias},
             towers=dict(image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224",
                                    image_size=32, depth=2),
                         text=dict(type="ScratchTextTower", tokenizer_file={tokenizer!r}, width=32,
                                   depth=2, heads=2)))
loss = dict(type={loss!r})
train_data = dict(dataset=dict(type="SyntheticImageText", size=48, image_size=32), batch_size={batch},
                  num_workers=0, shuffle=True)
schedule = dict(max_steps={steps}, warmup_steps=1)
optim = dict(lr=1e-3)
engine = dict(precision="fp32", seed=3, deterministic=True, log_every=1, grad_accum={accum},
              tensorboard=False, eval_at_end=False, clip_grad=1.0, threads=1)
work_dir = {work_dir!r}
"""


def write_accum_config(folder: Path, work_dir: Path, tokenizer: Path, batch: int, accum: int,
                       steps: int, loss: str = "CLIPLoss") -> Path:
    """A small model with no dropout (so runs with other batch splits can agree to fp32 noise)."""
    path = folder / f"accum_{loss}_b{batch}_k{accum}.py"
    path.write_text(ACCUM_CONFIG.format(
        runtime=str(REPO / "configs/_base_/default_runtime.py"), tokenizer=str(tokenizer),
        bias=-2.0 if loss == "SigLIPLoss" else None, loss=loss, batch=batch, accum=accum,
        steps=steps, work_dir=str(work_dir)))
    return path
