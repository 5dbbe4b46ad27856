"""One work dir holds one run: a new run in a used work dir is refused (one line naming --resume
and --overwrite); --overwrite starts clean, so nothing of the old run reaches the new run's
metrics, log, checkpoints or TensorBoard events; `facetvlp eval` in the same work dir adds its
results to the run's metrics. Pruning sorts checkpoints by step and never deletes the one
latest.json names; a resumed run's log keeps only the steps up to its checkpoint."""

import json
import subprocess

import pytest

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import checkpoint as ckpt
from facetvlp.core.engine import train
from facetvlp.core.engine.run_log import open_log_at
from facetvlp.core.errors import ConfigError
from facetvlp.core.eval.run import evaluate

from engine_support import cli, env, write_config

EVAL = """
eval = [dict(type="Retrieval", dataset=dict(type="SyntheticImageText", size=16, image_size=32, seed=99),
             ks=(1,), batch_size=16)]
"""


def save(folder, step):
    return ckpt.save_checkpoint(folder / f"step_{step:08d}.safetensors", {}, {"step": step})


def test_pruning_orders_by_step_number_and_keeps_the_latest(tmp_path):
    for step in (99_999_999, 100_000_000):  # a 9-digit step sorts first by name
        save(tmp_path, step)
    ckpt.prune_checkpoints(tmp_path, keep=1)
    assert [p.name for p in tmp_path.glob("step_*")] == ["step_100000000.safetensors"]

    folder = tmp_path / "resumed"
    for step in (5, 7, 9):
        save(folder, step)
    (folder / "latest.json").write_text(json.dumps({"file": "step_00000005.safetensors", "step": 5}))
    ckpt.prune_checkpoints(folder, keep=1)
    assert sorted(p.name for p in folder.glob("step_*")) == ["step_00000005.safetensors",
                                                            "step_00000009.safetensors"]
    ckpt.remove_checkpoints_after(folder, 5)  # what a resume from step 5 does
    assert [p.name for p in folder.glob("step_*")] == ["step_00000005.safetensors"]
    assert ckpt.load_checkpoint(folder)[1]["step"] == 5


def test_resumed_log_keeps_steps_up_to_the_checkpoint(tmp_path):
    log_file = tmp_path / "log.jsonl"
    log_file.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6))
                        + '{"step": 6, "lo')  # cut short by the kill
    with open_log_at(log_file, 3) as handle:
        handle.write(json.dumps({"step": 4, "loss": 0.0}) + "\n")
    assert [json.loads(line)["step"] for line in log_file.read_text().splitlines()] == [1, 2, 3, 4]
    open_log_at(log_file, 0).close()  # a run from step 0 starts an empty log
    assert log_file.read_text() == ""


def test_used_work_dir_is_refused_and_overwrite_starts_clean(tmp_path):
    work_dir = tmp_path / "run"
    config = write_config(tmp_path, work_dir, batch=8, steps=3, ckpt_every=1, extra=EVAL)
    train(load_config(config, ["engine.tensorboard=True"]))
    metrics = json.loads((work_dir / "metrics.json").read_text())
    (work_dir / "metrics.json").write_text(json.dumps({**metrics, "old/only": 1.0}))
    old_events = {p.name for p in (work_dir / "tensorboard").iterdir()}
    assert old_events

    with pytest.raises(ConfigError, match="already holds a run .a checkpoint at step 3.*--resume.*--overwrite"):
        train(load_config(config))
    refused = subprocess.run(cli("train", str(config)), env=env(), capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
    assert "--resume" in refused.stderr and "--overwrite" in refused.stderr

    train(load_config(config, ["schedule.max_steps=2", "engine.tensorboard=True"]), overwrite=True)
    assert [json.loads(line)["step"] for line in (work_dir / "log.jsonl").read_text().splitlines()] == [1, 2]
    metrics = json.loads((work_dir / "metrics.json").read_text())
    assert metrics["train/steps"] == 2 and "old/only" not in metrics
    assert sorted(p.name for p in (work_dir / "checkpoints").glob("step_*")) == [
        "step_00000001.safetensors", "step_00000002.safetensors"]
    assert not old_events & {p.name for p in (work_dir / "tensorboard").iterdir()}

    # `facetvlp eval` on the run's work dir is part of the same run: its results join metrics.json
    found = evaluate(load_config(config), checkpoint=str(work_dir))
    merged = json.loads((work_dir / "metrics.json").read_text())
    assert found and merged == {**metrics, **found} and merged["train/steps"] == 2
