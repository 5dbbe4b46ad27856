"""Checkpoints: atomic round trip; missing, truncated, corrupt and pickled files are refused with a
CheckpointError, and nothing in them is ever executed."""

import json
import os
import pickle

import pytest
import torch

from facetvlp.core.engine import checkpoint as ckpt
from facetvlp.core.errors import CheckpointError
from facetvlp.core.towers.weights import load_state_dict_file


def saved(tmp_path, step=3):
    tensors = {"model.w": torch.arange(6.0).reshape(2, 3), "optim.w::exp_avg": torch.ones(2, 3)}
    return ckpt.save_checkpoint(tmp_path / f"step_{step:08d}.safetensors", tensors,
                                {"step": step, "note": "x"}), tensors


def test_round_trip_and_latest_pointer(tmp_path):
    path, tensors = saved(tmp_path)
    loaded, meta = ckpt.load_checkpoint(tmp_path)  # a folder resolves through latest.json
    assert meta == {"step": 3, "note": "x"}
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
    assert json.loads((tmp_path / "latest.json").read_text())["file"] == path.name
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]  # no temporary left behind


def test_missing_truncated_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "none.safetensors")
    with pytest.raises(CheckpointError, match="no latest.json"):
        ckpt.load_checkpoint(tmp_path)
    path, _ = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        ckpt.load_checkpoint(path)
    path.write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError):
        ckpt.load_checkpoint(path)


class Exploit:
    """Unpickling this would create a file: the proof that a loader ran pickle code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_pickled_payload_is_refused_and_never_executed(tmp_path, suffix):
    marker = tmp_path / "pwned"
    bad = tmp_path / f"evil{suffix}"
    with open(bad, "wb") as handle:
        pickle.dump({"model.w": Exploit(str(marker))}, handle)
    with pytest.raises(CheckpointError):
        ckpt.load_checkpoint(bad)
    with pytest.raises(CheckpointError):
        load_state_dict_file(bad)
    assert not marker.exists()


def test_weights_that_do_not_fit_the_model(tmp_path):
    path, _ = saved(tmp_path)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        ckpt.load_model_weights(torch.nn.Linear(3, 2), path)


def test_rng_capture_restores_every_stream():
    import random

    import numpy as np

    tensors, meta = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.restore_rng(tensors, json.loads(json.dumps(meta)))  # meta survives a JSON round trip
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]
