"""`load_from` starts a new run from another model's weights (an imported open_clip model, a
previous run); weights that do not fit are a CheckpointError, not a silent partial load."""

import pytest
import torch
from safetensors.torch import load_file

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import train
from facetvlp.core.engine.checkpoint import save_checkpoint
from facetvlp.core.errors import CheckpointError
from facetvlp.core.registry import MODELS, build

from engine_support import write_config


def test_load_from_initialises_every_weight(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=1),
                         ["optim.lr=0.0", "optim.weight_decay=0.0"])
    source = build(MODELS, config.model)
    with torch.no_grad():
        for param in source.parameters():
            param.add_(0.25)  # differs from any fresh initialisation
    save_checkpoint(tmp_path / "source.safetensors",
                    {f"model.model.{k}": v for k, v in source.state_dict().items()}, {"step": 0})
    config.load_from = str(tmp_path / "source.safetensors")
    train(config)  # one step at lr 0: the weights stay what was loaded
    trained = load_file(str(next((tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))))
    for name, value in source.state_dict().items():
        assert torch.equal(trained[f"model.model.{name}"], value), name


def test_load_from_refuses_weights_that_do_not_fit(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=1))
    save_checkpoint(tmp_path / "other.safetensors", {"model.model.something": torch.zeros(2)}, {"step": 0})
    config.load_from = str(tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="does not fit this model"):
        train(config)
