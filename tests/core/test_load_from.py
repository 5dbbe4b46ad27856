"""`load_from` starts a new run from another model's weights (an imported open_clip model, a
previous run), and from the loss's own weights (the ITM fusion block) when the file has them;
weights that do not fit are a CheckpointError, not a silent partial load."""

import pytest
import torch
from safetensors.torch import load_file

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import train
from facetvlp.core.engine.checkpoint import save_checkpoint
from facetvlp.core.errors import CheckpointError
from facetvlp.core.registry import LOSSES, MODELS, build

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


ITM = """
loss = dict(_delete_=True, type="CombinedLoss", losses=[dict(type="CLIPLoss"), dict(type="ITMLoss", embed_dim=64)])
"""


def test_load_from_keeps_the_loss_parameters(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=1, extra=ITM),
                         ["optim.lr=0.0", "optim.weight_decay=0.0"])
    model, loss = build(MODELS, config.model), build(LOSSES, config.loss)
    with torch.no_grad():
        for param in loss.parameters():
            param.add_(0.25)
    tensors = {f"model.model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"model.loss.{k}": v for k, v in loss.state_dict().items()})
    save_checkpoint(tmp_path / "source.safetensors", tensors, {"step": 0})
    config.load_from = str(tmp_path / "source.safetensors")
    train(config)
    trained = load_file(str(next((tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))))
    assert len(loss.state_dict()) > 10
    for name, value in loss.state_dict().items():
        assert torch.equal(trained[f"model.loss.{name}"], value), name
