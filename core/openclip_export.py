"""Hand a facetvlp ContrastiveModel back to open_clip: a model config JSON plus weights.

The reverse of ``openclip_import.py``, for the towers open_clip can build:

- a timm image tower becomes open_clip's timm adapter (``vision_cfg.timm_model_name``,
  ``visual.trunk.*`` + ``visual.head.proj``). open_clip builds the trunk with
  ``timm.create_model(name)`` at the model's own size and then resets its pooling, so a tower
  built with other options (another image size, channel count, a pooling norm timm would place
  elsewhere) is not expressible; the export builds open_clip's trunk and checks it gives the same
  features before writing anything.
- a Hugging Face text tower becomes open_clip's HF adapter (``text_cfg.hf_model_name``,
  ``text.transformer.*`` + ``text.proj``). The model's config and tokenizer files are copied into
  ``OUT/text`` and ``hf_model_name`` names that directory by its absolute path: open_clip then
  builds the encoder from the local config (``AutoModel.from_config``) and loads the weights from
  the checkpoint, with no download.
- open_clip's native towers, as ``import-openclip`` brought them in (a ``vit_*_clip_*`` ViT and a
  transformers CLIPTextModel directory), go back to ``visual.conv1`` / ``transformer.resblocks``
  keys with the shapes read from the built towers.

Everything else (point towers, a scratch text tower, an MLP image projection, projection
biases, the max-pooled text tower) is refused with the reason; nothing is guessed.

``OUT`` then holds ``open_clip_config.json`` (``model_cfg`` + ``preprocess_cfg``) and
``open_clip_model.safetensors`` (what ``open_clip.create_model("local-dir:OUT")`` reads), and
``NAME.json``, the bare model config for ``open_clip.add_model_config`` +
``open_clip.create_model(NAME, pretrained=OUT/open_clip_model.safetensors)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError
from .model import ContrastiveModel
from .openclip_import import MODEL_PREFIX

OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = "open_clip_model.safetensors"
#: HFTextTower pools -> open_clip HF poolers (open_clip's max_pooler fills the real tokens with
#: -inf instead of the padding, so "max" has no counterpart)
POOLS_TO_OPEN_CLIP = {"mean": "mean_pooler", "cls": "cls_last_hidden_state_pooler", "pooler": "cls_pooler"}
#: files of a transformers model directory that hold weights (the checkpoint carries those)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".onnx")
#: TimmVisionTower options open_clip's timm adapter can reproduce (it passes none to timm)
TIMM_ADAPTER_OPTIONS = {"type", "name", "checkpoint", "pool", "drop_path_rate", "image_size", "in_chans",
                        "fc_norm"}


def refuse(reason: str):
    raise CheckpointError(f"cannot export this model to open_clip: {reason}")


# -- reading the model ---------------------------------------------------------------------------
def load_facetvlp_model(checkpoint: str | os.PathLike) -> tuple[dict, ContrastiveModel]:
    """(model cfg, model with the checkpoint's weights) from a training checkpoint (file,
    checkpoint dir or work dir) or an ``import-openclip`` model.safetensors."""
    from .engine.checkpoint import load_checkpoint, load_state_strictly, model_state, resolve_checkpoint
    from .registry import MODELS, build

    tensors, meta = load_checkpoint(checkpoint)
    model_cfg = meta.get("model") or (meta.get("config") or {}).get("model")
    if not model_cfg:
        refuse(f"{resolve_checkpoint(checkpoint)} records no model config")
    if model_cfg.get("type") != "ContrastiveModel":
        refuse(f"model type {model_cfg.get('type')!r}: only a ContrastiveModel (image + text) has an "
               "open_clip counterpart")
    towers = model_cfg.get("towers", {})
    if set(towers) != {"image", "text"}:
        refuse(f"towers {sorted(towers)}: open_clip models have exactly an image and a text tower")
    for modality, expected in (("image", "TimmVisionTower"), ("text", "HFTextTower")):
        if towers[modality].get("type") != expected:
            refuse(f"{modality} tower {towers[modality].get('type')!r}: only {expected} has an open_clip "
                   "counterpart")
    model = build(MODELS, model_cfg, where="model")
    load_state_strictly(model, model_state(tensors, MODEL_PREFIX), resolve_checkpoint(checkpoint))
    return model_cfg, model.eval()


def linear_projection(model: ContrastiveModel, modality: str) -> torch.Tensor:
    projection = model.projections[modality]
    if not isinstance(projection, nn.Linear):
        refuse(f"the {modality} projection is {type(projection).__name__}: open_clip's {modality} towers "
               "end in a linear projection")
    if projection.bias is not None:
        refuse(f"the {modality} projection has a bias (proj_bias=True)")
    return projection.weight.detach()


# -- image tower ---------------------------------------------------------------------------------
def open_clip_timm_trunk(name: str, pool: str):
    """The trunk exactly as open_clip's TimmModel builds it (timm_model.py)."""
    import timm

    trunk = timm.create_model(name, pretrained=False)
    trunk.reset_classifier(0, **({"global_pool": pool} if pool else {}))
    return trunk.eval()


def timm_adapter_image(model: ContrastiveModel, tower_cfg: dict) -> tuple[dict, dict] | str:
    """(vision_cfg, weights) for open_clip's timm adapter, or why it cannot build this tower."""
    extra = sorted(set(tower_cfg) - TIMM_ADAPTER_OPTIONS)
    if extra:
        return f"options {extra} (open_clip passes no options to timm)"
    tower = model.towers["image"]
    own = tower.model
    pool = tower_cfg.get("pool")
    if pool is None:  # the network's own pooling, which open_clip keeps with timm_pool=""
        pool = ""
    try:
        trunk = open_clip_timm_trunk(tower_cfg["name"], pool)
    except Exception as exc:  # noqa: BLE001  (timm's own message says why)
        return f"timm cannot build '{tower_cfg['name']}' as open_clip does ({exc})"
    state, wanted = own.state_dict(), trunk.state_dict()
    differ = sorted(k for k in set(state) | set(wanted)
                    if k not in state or k not in wanted or state[k].shape != wanted[k].shape)
    if differ:
        return f"open_clip's '{tower_cfg['name']}' trunk has other weights ({differ[:3]} differ)"
    trunk.load_state_dict(state)
    size = trunk.pretrained_cfg.get("input_size", (3, 224, 224))
    probe = torch.randn(1, *size)
    with torch.no_grad():
        theirs, ours = trunk(probe), tower({"image": probe}).pooled
    if theirs.shape != ours.shape or not torch.allclose(theirs, ours, atol=1e-5, rtol=1e-4):
        return (f"open_clip builds '{tower_cfg['name']}' at its default size {tuple(size[1:])} with "
                f"timm_pool='{pool}', which computes other features than this tower")
    matrix = linear_projection(model, "image")
    vision_cfg = dict(timm_model_name=tower_cfg["name"], timm_model_pretrained=False, timm_pool=pool,
                      timm_proj="linear", image_size=int(size[-1]))
    weights = {f"visual.trunk.{k}": v for k, v in trunk.state_dict().items()}
    weights["visual.head.proj.weight"] = matrix
    return vision_cfg, weights


def native_vit_image(model: ContrastiveModel) -> tuple[dict, dict, bool] | str:
    """(vision_cfg, weights, quick_gelu) for open_clip's own ViT, or why it cannot build it."""
    from timm.layers import QuickGELU
    from timm.models.vision_transformer import VisionTransformer

    vit = model.towers["image"].model
    if not isinstance(vit, VisionTransformer):
        return "not a ViT"
    block = vit.blocks[0]
    checks = {
        "a class token and no register tokens": vit.cls_token is not None and vit.num_prefix_tokens == 1,
        "class-token pooling": vit.global_pool == "token" and isinstance(vit.fc_norm, nn.Identity),
        "a norm before the blocks (ln_pre)": isinstance(vit.norm_pre, nn.LayerNorm),
        "no patch-embedding bias": vit.patch_embed.proj.bias is None,
        "qkv biases and no q/k norm or layer scale": block.attn.qkv.bias is not None
        and isinstance(block.attn.q_norm, nn.Identity) and isinstance(block.ls1, nn.Identity),
        "LayerNorm eps 1e-5": vit.norm.eps == 1e-5,
    }
    failed = [what for what, holds in checks.items() if not holds]
    if failed:
        return f"open_clip's ViT needs {', '.join(failed)}"
    act = block.mlp.act
    if not isinstance(act, (nn.GELU, QuickGELU)) or getattr(act, "approximate", "none") != "none":
        return f"activation {type(act).__name__} (open_clip: GELU or QuickGELU)"
    width = vit.embed_dim
    vision_cfg = dict(image_size=int(vit.patch_embed.img_size[0]), patch_size=int(vit.patch_embed.patch_size[0]),
                      width=width, layers=len(vit.blocks), head_width=width // block.attn.num_heads,
                      mlp_ratio=block.mlp.fc1.out_features / width)
    swaps = [("patch_embed.proj", "conv1"), ("norm_pre", "ln_pre"), ("blocks.", "transformer.resblocks."),
             ("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.qkv.", "attn.in_proj_"),
             ("attn.proj", "attn.out_proj"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]
    weights = {}
    for key, value in vit.state_dict().items():
        if key == "cls_token":
            weights["visual.class_embedding"] = value.reshape(-1)
        elif key == "pos_embed":
            weights["visual.positional_embedding"] = value[0]
        elif key.startswith("norm."):
            weights["visual.ln_post." + key[len("norm."):]] = value
        else:
            for old, new in swaps:
                key = key.replace(old, new)
            weights["visual." + key] = value
    weights["visual.proj"] = linear_projection(model, "image").T
    return vision_cfg, weights, isinstance(act, QuickGELU)


def export_image(model: ContrastiveModel, tower_cfg: dict) -> tuple[dict, dict, bool | None]:
    adapter = timm_adapter_image(model, tower_cfg)
    if not isinstance(adapter, str):
        return (*adapter, None)  # the timm adapter uses timm's own activation either way
    native = native_vit_image(model)
    if isinstance(native, str):
        refuse(f"image tower '{tower_cfg['name']}': not as open_clip's timm adapter ({adapter}), "
               f"nor as its native ViT ({native})")
    return native


# -- text tower ----------------------------------------------------------------------------------
def copy_text_dir(source: str, out_dir: Path) -> Path:
    """Config and tokenizer files of the text model, without its weights."""
    target = (out_dir / "text").resolve()
    target.mkdir(parents=True, exist_ok=True)
    for path in Path(source).iterdir():
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
            shutil.copy2(path, target / path.name)
    return target


def export_text(model: ContrastiveModel, tower_cfg: dict, out_dir: Path) -> tuple[dict, dict, bool | None]:
    tower = model.towers["text"]
    if tower.model.config.model_type == "clip_text_model" and tower.pool == "pooler":
        return native_text(tower, linear_projection(model, "text"))
    if tower.pool not in POOLS_TO_OPEN_CLIP:
        refuse(f"text pool '{tower.pool}': open_clip's poolers are {sorted(POOLS_TO_OPEN_CLIP.values())} "
               "(its max_pooler does not ignore padding as HFTextTower does)")
    if getattr(tower.model.config, "is_encoder_decoder", False):
        refuse("an encoder-decoder text model")
    projection = model.projections["text"]
    kind = ("none" if isinstance(projection, nn.Identity) else
            "linear" if isinstance(projection, nn.Linear) and projection.bias is None else
            "mlp" if isinstance(projection, nn.Sequential) and all(
                getattr(m, "bias", None) is None for m in projection) else None)
    if kind is None:
        refuse("the text projection has a bias (proj_bias=True)")
    text_dir = str(copy_text_dir(tower.path, out_dir))
    text_cfg = dict(hf_model_name=text_dir, hf_tokenizer_name=text_dir, hf_model_pretrained=False,
                    hf_proj_type=None if kind == "none" else kind,
                    hf_pooler_type=POOLS_TO_OPEN_CLIP[tower.pool], context_length=tower.max_length)
    encoder = tower.model.state_dict()
    weights = {f"text.transformer.{k}": v for k, v in encoder.items() if not k.endswith("position_ids")}
    weights.update({f"text.proj.{k}": v for k, v in projection.state_dict().items()})
    return text_cfg, weights, None


def native_text(tower, projection: torch.Tensor) -> tuple[dict, dict, bool]:
    """A CLIPTextModel (import-openclip's native text tower) back to open_clip's text transformer."""
    config = tower.model.config
    if config.hidden_act not in ("gelu", "quick_gelu") or config.layer_norm_eps != 1e-5:
        refuse(f"CLIP text model with {config.hidden_act} / eps {config.layer_norm_eps} "
               "(open_clip: gelu or quick_gelu, eps 1e-5)")
    state = tower.model.state_dict()
    # transformers < 5 nests CLIPTextModel's weights under text_model.; 5 does not
    state = {k.removeprefix("text_model."): v for k, v in state.items()}
    weights = {
        "token_embedding.weight": state.pop("embeddings.token_embedding.weight"),
        "positional_embedding": state.pop("embeddings.position_embedding.weight"),
        "ln_final.weight": state.pop("final_layer_norm.weight"),
        "ln_final.bias": state.pop("final_layer_norm.bias"),
        "text_projection": projection.T,
    }
    state.pop("embeddings.position_ids", None)
    renames = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
               "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for layer in range(config.num_hidden_layers):
        prefix, out = f"encoder.layers.{layer}.", f"transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):  # three projections -> open_clip's packed q|k|v
            weights[out + f"attn.in_proj_{kind}"] = torch.cat(
                [state.pop(prefix + f"self_attn.{q}_proj.{kind}") for q in ("q", "k", "v")])
        for old, new in renames.items():
            for kind in ("weight", "bias"):
                weights[out + f"{new}.{kind}"] = state.pop(prefix + f"{old}.{kind}")
    if state:
        refuse(f"CLIP text model weights without an open_clip counterpart: {sorted(state)[:4]}")
    text_cfg = dict(context_length=config.max_position_embeddings, vocab_size=config.vocab_size,
                    width=config.hidden_size, heads=config.num_attention_heads, layers=config.num_hidden_layers)
    return text_cfg, weights, config.hidden_act == "quick_gelu"


# -- the whole model -----------------------------------------------------------------------------
def export_open_clip(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                     name: str = "facetvlp-export") -> dict[str, Any]:
    """Write ``checkpoint``'s ContrastiveModel as an open_clip model; returns the model config."""
    from safetensors.torch import save_file

    model_cfg, model = load_facetvlp_model(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    towers = model_cfg["towers"]
    vision_cfg, image_weights, image_quick = export_image(model, dict(towers["image"]))
    text_cfg, text_weights, text_quick = export_text(model, dict(towers["text"]), out_dir)
    natives = {q for q in (image_quick, text_quick) if q is not None}
    if len(natives) > 1:
        refuse("the native image and text towers use different activations (QuickGELU in one only); "
               "open_clip's quick_gelu is one switch for both")
    cfg: dict[str, Any] = {"embed_dim": model.embed_dim, "vision_cfg": vision_cfg, "text_cfg": text_cfg}
    if natives:
        cfg["quick_gelu"] = natives.pop()
    weights = {**image_weights, **text_weights, "logit_scale": model.logit_scale.detach().reshape(())}
    if model.logit_bias is not None:
        cfg["init_logit_bias"] = float(model.logit_bias)
        weights["logit_bias"] = model.logit_bias.detach().reshape(())
    save_file({k: v.detach().contiguous().clone() for k, v in weights.items()}, str(out_dir / OPEN_CLIP_WEIGHTS),
              metadata={"format": "pt", "source": "facetvlp export-openclip"})
    (out_dir / f"{name}.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    preprocess = {"size": vision_cfg["image_size"]}
    (out_dir / OPEN_CLIP_CONFIG).write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": preprocess}, indent=2), encoding="utf-8")
    return cfg
