"""The engine trains in train mode and evaluates in eval mode.

Hugging Face towers come out of `from_pretrained` in eval mode, so without the engine's
`.train()` MiniLM would train with its dropout off; a timm ResNet comes out in train mode, so a
frozen one would update its BatchNorm statistics unless `ContrastiveModel.train` is reached."""

import torch
from safetensors.torch import load_file
from torch import nn

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import train
from facetvlp.core.eval.run import evaluate
from facetvlp.core.registry import MODELS, build

from engine_support import write_config

EVAL = """
eval = [dict(type="Retrieval", dataset=dict(type="SyntheticImageText", size=16, image_size=32, seed=99),
             ks=(1,), batch_size=16)]
"""

FROZEN_RESNET = """
model = dict(towers=dict(image=dict(_delete_=True, type="TimmVisionTower", name="resnet10t")),
             trainable=dict(image="none"), embed_dim=64)
"""


def final_checkpoint(work_dir):
    return load_file(str(sorted((work_dir / "checkpoints").glob("step_*.safetensors"))[-1]))


def test_dropout_is_on_in_training_and_off_in_evaluation(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=2, extra=EVAL),
                         ["engine.eval_at_end=True"])
    seen = []  # (gradients enabled, module.training) at every call of a dropout with p > 0

    def record(module, args):
        if isinstance(module, nn.Dropout) and module.p > 0:
            seen.append((torch.is_grad_enabled(), module.training))

    handle = nn.modules.module.register_module_forward_pre_hook(record)
    try:
        train(config)
    finally:
        handle.remove()
    in_training = [mode for grad, mode in seen if grad]
    in_evaluation = [mode for grad, mode in seen if not grad]
    # MiniLM's dropouts (p = 0.1) ran at every training step, all in train mode ...
    assert len(in_training) >= 2 and all(in_training)
    # ... and in eval mode during the evaluation at the end.
    assert in_evaluation and not any(in_evaluation)


def test_frozen_batchnorm_tower_keeps_its_running_statistics(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=2, extra=FROZEN_RESNET))
    fresh = build(MODELS, config.model).state_dict()
    train(config)
    trained = final_checkpoint(tmp_path / "run")
    statistics = [k for k in fresh if k.startswith("towers.image.") and
                  k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")]
    assert len(statistics) > 20
    for key in statistics:  # BatchNorm's initial statistics: zeros, ones and a zero count
        assert torch.equal(trained[f"model.model.{key}"], fresh[key]), key
    # the trainable text tower did train
    assert any(not torch.equal(trained[f"model.model.{k}"], v)
               for k, v in fresh.items() if k.startswith("towers.text."))


def test_evaluation_gives_train_mode_back_and_frozen_towers_stay_in_eval(tmp_path):
    config = load_config(write_config(tmp_path, tmp_path / "run", batch=8, steps=1,
                                      extra=FROZEN_RESNET + EVAL))
    model = build(MODELS, config.model).train()
    image, text = model.towers["image"], model.towers["text"]
    assert not image.training and text.training
    modes = []
    handle = image.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    evaluate(config, model=model, device="cpu")
    handle.remove()
    assert modes and not any(modes)
    assert model.training and text.model.training  # an evaluation mid-training hands train mode back
    assert not image.training and not any(m.training for m in image.modules())
