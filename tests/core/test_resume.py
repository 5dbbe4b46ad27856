"""A run killed with SIGKILL at an arbitrary step and resumed with --resume must end with the same
weights as an uninterrupted run (CPU, deterministic mode)."""

import json
import random
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from engine_support import cli, env, run, write_config

pytestmark = pytest.mark.slow

STEPS = 6


def final_weights(work_dir):
    latest = json.loads((work_dir / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == STEPS
    tensors = load_file(str(work_dir / "checkpoints" / latest["file"]))
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def kill_after_checkpoint(cmd, work_dir, step, timeout=300):
    """Start `cmd`, SIGKILL it as soon as the checkpoint of `step` is published."""
    process = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = work_dir / "checkpoints" / "latest.json"
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if latest.exists() and json.loads(latest.read_text() or "{}").get("step", 0) >= step:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    return json.loads(latest.read_text())["step"]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    whole_dir, killed_dir = tmp_path / "whole", tmp_path / "killed"
    run(cli("train", str(write_config(tmp_path, whole_dir, batch=8, steps=STEPS, ckpt_every=1))))

    config = write_config(tmp_path, killed_dir, batch=8, steps=STEPS, ckpt_every=1)
    kill_step = random.Random().randint(1, STEPS - 2)  # arbitrary, and not the last step
    reached = kill_after_checkpoint(cli("train", str(config)), killed_dir, kill_step)
    assert reached < STEPS
    run(cli("train", str(config), "--resume"))

    expected, resumed = final_weights(whole_dir), final_weights(killed_dir)
    assert expected.keys() == resumed.keys()
    changed = 0
    for name, value in expected.items():
        assert torch.equal(value, resumed[name]), f"{name} differs after resume from step {reached}"
    # the comparison is meaningful: training moved the weights away from their initial values
    first = load_file(str(sorted((whole_dir / "checkpoints").glob("step_*.safetensors"))[0]))
    changed = sum(not torch.equal(first[k], expected[k]) for k in expected if k.startswith("model."))
    assert changed > 10
