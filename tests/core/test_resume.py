"""Exact resume with randomness on: a run with text-tower dropout, ViT drop-path, FLIP masking,
per-item augmentation and two epoch boundaries, SIGKILLed at three seeded random steps and
resumed each time with --resume, logs the same per-step losses and ends with bit-equal weights
and optimizer state as the uninterrupted run (fp32, CPU). Deleting the RNG restore, or the
resumed log's truncation, makes it fail."""

import json
import random
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from engine_support import cli, env, losses, run, write_config

pytestmark = pytest.mark.slow

STEPS = 10  # dataset of 32, batch 8: 4 steps an epoch, so the run crosses two epoch boundaries
RANDOM = dict(size=32, augment=True, mask_ratio=0.5, drop_path=0.1)


def final_state(work_dir):
    latest = json.loads((work_dir / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == STEPS
    tensors = load_file(str(work_dir / "checkpoints" / latest["file"]))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def logged_steps(work_dir):
    return [json.loads(line)["step"] for line in (work_dir / "log.jsonl").read_text().splitlines()]


def kill_when_logged(cmd, work_dir, step, timeout=300):
    """Start `cmd` and SIGKILL it as soon as log.jsonl shows `step` (checkpointed or not)."""
    process = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_file = work_dir / "log.jsonl"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if log_file.exists() and f'"step": {step},' in log_file.read_text():
                break
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()


def test_sigkill_at_random_steps_then_resume_equals_uninterrupted(tmp_path):
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    run(cli("train", str(write_config(tmp_path, whole_dir, batch=8, steps=STEPS, ckpt_every=3, **RANDOM))))

    config = write_config(tmp_path, killed_dir, batch=8, steps=STEPS, ckpt_every=3, **RANDOM)
    kill_steps = sorted(random.Random(2026).sample(range(2, STEPS), 3))
    for attempt, step in enumerate(kill_steps):
        kill_when_logged(cli("train", str(config), *(["--resume"] if attempt else [])), killed_dir, step)
    run(cli("train", str(config), "--resume"))

    # Each log line once (lines a killed run wrote after its last checkpoint were replaced) ...
    assert logged_steps(killed_dir) == list(range(1, STEPS + 1))
    # ... with the same loss at every step: masks, dropout, drop-path and augmentation all replayed.
    assert losses(killed_dir) == losses(whole_dir)
    expected, resumed = final_state(whole_dir), final_state(killed_dir)
    assert expected.keys() == resumed.keys()
    for name, value in expected.items():
        assert torch.equal(value, resumed[name]), f"{name} differs after resumes at {kill_steps}"
    # The comparison is meaningful: training moved the weights.
    first = load_file(str(sorted((whole_dir / "checkpoints").glob("step_*.safetensors"))[0]))
    assert sum(not torch.equal(first[k], expected[k]) for k in expected if k.startswith("model.")) > 10
