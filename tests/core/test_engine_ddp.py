"""2-process torchrun on CPU (gloo).

- DDP and FSDP2 see the same global batches, and so log the same losses, as one process with the
  same global batch. The FSDP2 run also evaluates at the end (every rank gathers the full weights,
  rank 0 evaluates an unsharded copy), checkpoints, and is resumed to more steps: the resumed
  steps still match the single process.
- With grad_accum=2, gradients are synchronised once per step, after the last micro-batch's
  forward, under DDP (no_sync) and FSDP2 (set_requires_gradient_sync).
"""

import json
import sys
from pathlib import Path

import pytest

from engine_support import cli, losses, run, torchrun, write_config

pytestmark = pytest.mark.slow

# A constant learning rate after warmup, so a run extended by --resume follows the same
# schedule as one that was given all its steps from the start.
# A frozen text tower stays in eval mode, so no dropout runs: one process and two draw their
# dropout masks from different per-rank streams and could not log the same losses.
COMPARABLE = ("--set", "schedule.min_lr_ratio=1.0", "--set", "model.trainable.text=none")
FSDP_EVAL = ("--set", "engine.strategy=fsdp", "--set", "engine.eval_at_end=True", *COMPARABLE)
EVAL = """
eval = [dict(type="Retrieval", dataset=dict(type="SyntheticImageText", size=16, image_size=32, seed=99),
             ks=(1,), batch_size=16)]
"""
WORKER = Path(__file__).with_name("grad_sync_worker.py")


def test_two_process_ddp_and_fsdp_match_single_process(tmp_path):
    single_dir, ddp_dir, fsdp_dir = tmp_path / "single", tmp_path / "ddp", tmp_path / "fsdp"
    run(cli("train", str(write_config(tmp_path, single_dir, batch=8, steps=6)), *COMPARABLE))
    run(torchrun(2, "train", str(write_config(tmp_path, ddp_dir, batch=4, steps=6)), *COMPARABLE))
    fsdp = write_config(tmp_path, fsdp_dir, batch=4, steps=4, ckpt_every=2, extra=EVAL)
    run(torchrun(2, "train", str(fsdp), *FSDP_EVAL))
    first_leg = json.loads((fsdp_dir / "metrics.json").read_text())
    assert first_leg["train/steps"] == 4 and "retrieval/i2t_R@1" in first_leg
    run(torchrun(2, "train", str(fsdp), "--resume", *FSDP_EVAL, "--set", "schedule.max_steps=6"))
    metrics = json.loads((fsdp_dir / "metrics.json").read_text())
    assert metrics["train/steps"] == 6 and "retrieval/i2t_R@1" in metrics

    single, ddp, fsdp_losses = losses(single_dir), losses(ddp_dir), losses(fsdp_dir)
    assert len(single) == len(ddp) == len(fsdp_losses) == 6
    # Losses move step to step (so the comparison is not between constants) ...
    assert max(single) - min(single) > 1e-3
    # ... and the runs agree on every one of them, so the updates agree too.
    assert ddp == pytest.approx(single, rel=1e-4, abs=1e-5)
    assert fsdp_losses == pytest.approx(single, rel=1e-4, abs=1e-5)


def sync_pattern(events: list[str], accumulation: int) -> list[list[int]]:
    """Per optimizer step, the number of syncs that followed each micro-batch's forward."""
    per_forward: list[int] = []
    for event in events:
        if event == "forward":
            per_forward.append(0)
        elif per_forward:
            per_forward[-1] += 1
    return [per_forward[i : i + accumulation] for i in range(0, len(per_forward), accumulation)]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_gradients_sync_once_per_accumulated_step(tmp_path, strategy):
    config = write_config(tmp_path, tmp_path / "run", batch=4, steps=2)
    out = tmp_path / "events"
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(WORKER), str(config), str(out), f"engine.strategy={strategy}", "engine.grad_accum=2"])
    # GradCache accumulation forwards each micro-batch twice (no-grad, then with grad): 2 x 2
    # forwards per step, and only the backward of the last re-forward may synchronise
    for rank in (0, 1):
        steps = sync_pattern(json.loads((out / f"events_{rank}.json").read_text()), 4)
        assert len(steps) == 2
        for *earlier, last in steps:
            assert earlier == [0, 0, 0], f"{strategy}: gradients synced after a non-final forward"
            assert last > 0, f"{strategy}: no gradient sync after the last micro-batch"
