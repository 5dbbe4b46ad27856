"""`load_from` starts a new run from another model's weights (an imported open_clip model, a
previous run), its fusion encoder included; weights that do not fit are a CheckpointError, not a
silent partial load."""

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


FUSION = """
model = dict(towers=dict(image=dict(image_size=32, drop_path_rate=0.0)), embed_dim=64,
             fusion=dict(depth=1))
loss = dict(_delete_=True, type="CombinedLoss",
            losses=[dict(type="CLIPLoss"), dict(type="ITMLoss"), dict(type="MLMLoss")])
eval = [dict(type="Retrieval", itm_top_k=3, ks=(1, 3),
             dataset=dict(type="SyntheticImageText", size=6, image_size=32, seed=9))]
"""


def itm_logits(model) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    tokens = model.tokenize(["a red picture", "an image that is mostly blue"])
    text = model.towers["text"]({"text_input": tokens})
    with torch.no_grad():
        return model.fusion.match_logits(text.tokens, text.token_mask, torch.randn(2, 4, 192, generator=g))


def test_fusion_survives_checkpoint_load_from_eval_and_finetune(tmp_path):
    from facetvlp.core.eval.run import evaluate
    from facetvlp.core.engine.checkpoint import load_model_weights
    from facetvlp.core.heads.encoder_init import load_encoder

    first = load_config(write_config(tmp_path, tmp_path / "first", batch=8, steps=1, extra=FUSION))
    train(first)
    saved = load_file(str(next((tmp_path / "first" / "checkpoints").glob("step_*.safetensors"))))
    fusion_keys = [k for k in saved if k.startswith("model.model.fusion.")]
    assert any(".crossattention." in k for k in fusion_keys) and any("itm_head" in k for k in fusion_keys)
    # load_from (weights only, lr 0): the second run's checkpoint holds the same fusion weights
    second = load_config(write_config(tmp_path, tmp_path / "second", batch=8, steps=1, extra=FUSION),
                         ["optim.lr=0.0", "optim.weight_decay=0.0"])
    second.load_from = str(tmp_path / "first")
    train(second)
    carried = load_file(str(next((tmp_path / "second" / "checkpoints").glob("step_*.safetensors"))))
    for key in fusion_keys:
        assert torch.equal(carried[key], saved[key]), key
    # eval builds the model and reads model.model.*: the same ITM scores from either checkpoint,
    # not those of a fresh model, and the same re-ranked retrieval
    fresh = build(MODELS, first.model).eval()
    loaded = []
    for run in ("first", "second"):
        model = build(MODELS, first.model).eval()
        load_model_weights(model, tmp_path / run, prefix="model.model.")
        loaded.append(itm_logits(model))
    assert torch.equal(loaded[0], loaded[1])
    assert not torch.allclose(loaded[0], itm_logits(fresh))
    metrics = [evaluate(load_config(write_config(tmp_path, tmp_path / run, batch=8, steps=1, extra=FUSION)),
                        checkpoint=str(tmp_path / run)) for run in ("first", "second")]
    assert metrics[0] == metrics[1] and "retrieval_itm/i2t_R@1" in metrics[0]
    # finetune's encoder loading takes the fusion encoder by name, and reports nothing of it
    # missing or unused; a model without one reports it unused
    report = load_encoder(fresh, tmp_path / "first")
    assert not [k for k in report.missing if k.startswith("fusion.")]
    assert not [k for k in report.unexpected if k.startswith("fusion.")]
    assert torch.equal(itm_logits(fresh), loaded[0])
    plain_cfg = first.model.to_dict() if hasattr(first.model, "to_dict") else dict(first.model)
    plain_cfg.pop("fusion")
    report = load_encoder(build(MODELS, plain_cfg), tmp_path / "first")
    assert len([k for k in report.unexpected if k.startswith("fusion.")]) == len(fusion_keys)
