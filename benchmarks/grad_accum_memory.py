"""Memory and time of one training step: grad accumulation (GradCache) vs one large batch.

Model: timm vit_tiny_patch16_224 + the offline MiniLM-L6 text tower (configs/_base_/
clip_vit_tiny_minilm.py), CLIP loss, fp32, 224 px, captions from RSICD when the shared data is here.
Each mode runs in its own process, one warm-up step and one measured step:

- ``micro``: one plain step on a micro-batch of b (the memory accumulation should keep to);
- ``accumulate``: k micro-batches of b through ``accumulate_gradients`` (one loss over k*b);
- ``large``: one plain step on a batch of k*b (the same gradient, all activations at once);
- ``old_loop``: k plain steps of b, losses averaged (the engine before: k small InfoNCE problems).

Measured: the peak of the process's resident memory during the step above its level before it
(sampled every millisecond from /proc/self/statm, after glibc's ``malloc_trim`` has returned the
warm-up's freed memory, so the level before is the live model and gradients), and the peak bytes of tensors autograd holds
for backward (saved-tensor hooks; parameters excluded), which is exact and free of allocator
noise.

    python benchmarks/grad_accum_memory.py                 # k=4, b=4
    python benchmarks/grad_accum_memory.py --k 8 --b 4
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import REPO, load_captions  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MODES = ("micro", "accumulate", "large", "old_loop")


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakResident:
    """Highest resident memory while the block runs, from a sampling thread (torch releases the
    GIL inside its kernels, so the thread gets to look)."""

    def __enter__(self):
        self.peak, self.running = resident_bytes(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, resident_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, resident_bytes())


class SavedForBackward:
    """Peak bytes of activations autograd keeps for backward (parameters excluded)."""

    def __init__(self, module: torch.nn.Module):
        self.weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
        self.alive = self.peak = 0

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        size = 0 if storage.data_ptr() in self.weights else storage.nbytes()
        self.alive += size
        self.peak = max(self.peak, self.alive)
        return _Held(tensor, size, self)

    @staticmethod
    def unpack(held):
        return held.tensor


class _Held:
    def __init__(self, tensor, size, counter):
        self.tensor, self.size, self.counter = tensor, size, counter

    def __del__(self):
        self.counter.alive -= self.size


def run_mode(mode: str, k: int, b: int) -> dict:
    import facetvlp.core  # noqa: F401
    from facetvlp.core.collate import Collator
    from facetvlp.core.config import load_config
    from facetvlp.core.engine import TrainModule
    from facetvlp.core.engine.accumulate import accumulate_gradients
    from facetvlp.core.registry import LOSSES, MODELS, build

    torch.manual_seed(0)
    cfg = load_config(REPO / "configs/_base_/clip_vit_tiny_minilm.py")
    module = TrainModule(build(MODELS, cfg.model), build(LOSSES, dict(type="CLIPLoss"))).train()
    collate = Collator(module.model.tokenize)
    captions = load_captions(k * b)
    items = [{"image": torch.rand(3, 224, 224), "text": captions[i], "meta": {"index": i}}
             for i in range(k * b)]
    small = [collate(items[i : i + b]) for i in range(0, k * b, b)]
    large = [collate(items)]
    no_autocast = contextlib.nullcontext()

    def step():
        if mode == "accumulate":
            accumulate_gradients(module, module.loss_of, small, 0.0, no_autocast)
        elif mode == "old_loop":
            for batch in small:
                (module(batch)["loss"] / k).backward()
        else:
            accumulate_gradients(module, module.loss_of, small[:1] if mode == "micro" else large,
                                 0.0, no_autocast)

    step()  # warm-up: gradients exist from here on, so they are not counted below
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so RSS = live memory
    before = resident_bytes()
    saved = SavedForBackward(module)
    started = time.perf_counter()
    with PeakResident() as peak, torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
        step()
    seconds = time.perf_counter() - started
    samples = b if mode == "micro" else k * b
    return {"mode": mode, "samples": samples, "step_peak_rss_mib": (peak.peak - before) / 2**20,
            "saved_for_backward_mib": saved.peak / 2**20, "seconds": seconds,
            "samples_per_s": samples / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4, help="micro-batches accumulated")
    parser.add_argument("--b", type=int, default=4, help="micro-batch size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.k, args.b)))
        return 0
    results = {}
    for mode in MODES:  # one process each: no mode inherits another's allocator state
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--k", str(args.k),
                              "--b", str(args.b), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"k={args.k} micro-batches of b={args.b} (global {args.k * args.b}), fp32, 224 px, "
          f"{args.threads} thread(s)")
    print(f"{'mode':<12}{'samples':>8}{'step peak RSS MiB':>20}{'saved for bw MiB':>18}{'samples/s':>11}")
    for mode, r in results.items():
        print(f"{mode:<12}{r['samples']:>8}{r['step_peak_rss_mib']:>20.1f}"
              f"{r['saved_for_backward_mib']:>18.1f}{r['samples_per_s']:>11.2f}")
    acc, micro, large = results["accumulate"], results["micro"], results["large"]
    print(f"accumulate / micro   peak RSS {acc['step_peak_rss_mib'] / micro['step_peak_rss_mib']:.2f}x, "
          f"saved {acc['saved_for_backward_mib'] / micro['saved_for_backward_mib']:.2f}x")
    print(f"accumulate / large   peak RSS {acc['step_peak_rss_mib'] / large['step_peak_rss_mib']:.2f}x, "
          f"saved {acc['saved_for_backward_mib'] / large['saved_for_backward_mib']:.2f}x")
    print(f"samples/s accumulate / large {acc['samples_per_s'] / large['samples_per_s']:.2f}x, "
          f"accumulate / old_loop {acc['samples_per_s'] / results['old_loop']['samples_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
