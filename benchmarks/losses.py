"""Forward + backward time of facetvlp's CLIP and SigLIP losses against open_clip's, in one process.

    python benchmarks/losses.py [--batch 512] [--dim 512] [--repeats 30]

Single process, CPU, fp32 embeddings. Runs alternate between the two implementations and the
median is reported, so that load from other processes on the machine hits both alike. Prints the
loss values too: they must agree.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss, SigLipLoss

from facetvlp.core.losses import CLIPLoss, SigLIPLoss


def timed(step) -> tuple[float, float]:
    start = time.perf_counter()
    value = step()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    image = F.normalize(torch.randn(args.batch, args.dim), dim=-1).requires_grad_(True)
    text = F.normalize(torch.randn(args.batch, args.dim), dim=-1).requires_grad_(True)
    scale, bias = torch.tensor(14.3, requires_grad=True), torch.tensor(-10.0, requires_grad=True)
    outputs = {"embeds": {"image": image, "text": text}, "logit_scale": scale, "logit_bias": bias}

    def step(loss_fn):
        def run():
            loss = loss_fn()
            loss.backward()
            for t in (image, text, scale, bias):
                t.grad = None
            return float(loss.detach())
        return run

    pairs = {
        "CLIP": (step(lambda: ClipLoss()(image, text, scale)),
                 step(lambda: CLIPLoss()({**outputs, "logit_bias": None}, {})["loss"])),
        "SigLIP": (step(lambda: SigLipLoss()(image, text, scale, bias)),
                   step(lambda: SigLIPLoss()(outputs, {})["loss"])),
    }
    print(f"batch {args.batch}, dim {args.dim}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for name, (peer, ours) in pairs.items():
        peer(), ours()  # warm-up
        peer_times, our_times = [], []
        for _ in range(args.repeats):
            t, peer_value = timed(peer)
            peer_times.append(t)
            t, our_value = timed(ours)
            our_times.append(t)
        p, o = statistics.median(peer_times), statistics.median(our_times)
        print(f"{name:7s} open_clip {p * 1e3:8.2f} ms  facetvlp {o * 1e3:8.2f} ms  "
              f"speed ratio (open_clip/facetvlp) {p / o:5.2f}x  loss {peer_value:.5f} vs {our_value:.5f}")


if __name__ == "__main__":
    main()
