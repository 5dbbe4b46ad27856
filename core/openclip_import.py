"""Start from an open_clip checkpoint the user has locally (BiomedCLIP, RemoteCLIP, GeoRSCLIP,
SkyCLIP ...): convert its weights into a facetvlp ContrastiveModel.

open_clip stores two families of towers, and a checkpoint may mix them:

- adapter towers: a timm trunk (``visual.trunk.*`` + ``visual.head.proj``) and a Hugging Face
  encoder (``text.transformer.*`` + ``text.proj``) - BiomedCLIP's layout. They map one to one
  onto TimmVisionTower / HFTextTower and the model's projections.
- native towers: open_clip's own ViT (``visual.conv1``, ``visual.transformer.resblocks.*``,
  ``visual.proj``) and text transformer (``token_embedding``, ``transformer.resblocks.*``,
  ``text_projection``) - the layout of OpenAI CLIP and of RemoteCLIP / GeoRSCLIP / SkyCLIP.
  The ViT is the architecture timm calls ``vit_*_clip_*`` (pre-norm, no patch bias, CLS pooling)
  and timm converts its weights; the text transformer is the architecture transformers calls
  CLIPTextModel (causal mask, pooled at the end-of-text token), written out as a local model
  directory with its BPE tokenizer so that HFTextTower loads it like any other.

What is not representable (ResNet image towers, attention pooling, MLP image projections, a
biased projection, layer scale ...) is refused with an error naming the key, never guessed.

Loading never unpickles: safetensors, or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import os
import pprint
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import CheckpointError, ConfigError
from .model import ContrastiveModel
from .towers.weights import load_state_dict_file

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "facetvlp_model.py"
#: prefix under which `facetvlp eval --checkpoint` and the trainer find the ContrastiveModel
MODEL_PREFIX = "model.model."

#: open_clip's HF poolers -> HFTextTower pools (open_clip's max_pooler fills the real tokens
#: with -inf instead of the padding, so no faithful import exists for it)
HF_POOLERS = {"mean_pooler": "mean", "cls_last_hidden_state_pooler": "cls", "cls_pooler": "cls"}
#: open_clip's default pooler per HF model type when the config names none (its hf_configs.py)
HF_DEFAULT_POOLER = {"bert": "cls_pooler", "roberta": "mean_pooler", "xlm-roberta": "mean_pooler"}


# -- reading ---------------------------------------------------------------------------------
def open_clip_package_dir() -> Path | None:
    """Where open_clip is installed (for its bundled configs and BPE file), without importing it."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def read_open_clip_config(model_cfg: Mapping[str, Any] | str | os.PathLike | None) -> dict:
    """The open_clip model config as a dict, from a dict, a model-config JSON, an
    ``open_clip_config.json`` (which wraps it under ``model_cfg``) or, when open_clip is
    installed, the name of one of its bundled configs ("ViT-B-32", "ViT-H-14" ...)."""
    if model_cfg is None:
        return {}
    if not isinstance(model_cfg, Mapping):
        path = Path(model_cfg)
        package = open_clip_package_dir()
        bundled = package / "model_configs" / f"{model_cfg}.json" if package else None
        if not path.is_file() and bundled is not None and bundled.is_file():
            path = bundled
        try:
            model_cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the open_clip config ({exc})") from exc
    cfg = dict(model_cfg)
    return dict(cfg["model_cfg"]) if "model_cfg" in cfg else cfg


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints saved from a DDP-wrapped model carry ``module.`` on every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def take(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def refuse(path, reason: str):
    raise CheckpointError(f"{path}: cannot import this open_clip model: {reason}")


# -- image tower -----------------------------------------------------------------------------
def timm_image_tower(state, vision_cfg, path) -> tuple[dict, str, dict, torch.Tensor]:
    """(tower cfg, projection kind, trunk weights, projection weight) of a timm-trunk tower."""
    name = vision_cfg.get("timm_model_name")
    if not name:
        refuse(path, "visual.trunk.* weights need vision_cfg.timm_model_name from the model config")
    pool = vision_cfg.get("timm_pool", "avg")
    if pool in ("abs_attn", "rot_attn"):
        refuse(path, f"timm_pool='{pool}' (attention pooling) has no facetvlp tower")
    head = take(state, "visual.head.")
    if set(head) != {"proj.weight"}:
        refuse(path, f"image projection {sorted(head) or '(none)'}: only a bias-free linear "
                     "visual.head.proj is supported")
    # No image_size: open_clip builds the trunk at the timm model's own size (a CNN takes no
    # img_size at all), and so must the import.
    cfg = dict(type="TimmVisionTower", name=name)
    # the trunk's classifier was reset to nothing; a norm in its head (ConvNeXt) is a feature layer
    trunk = {k: v for k, v in take(state, "visual.trunk.").items()
             if not k.startswith("head.") or k.startswith("head.norm.")}
    if pool:  # "" keeps the network's own pooling, as open_clip does
        cfg["pool"] = pool
        if pool != "token" and "norm.weight" in trunk and "fc_norm.weight" not in trunk:
            # open_clip switches pooling on a built ViT, which keeps its final norm on every token;
            # building a ViT with pool="avg" would move that norm after pooling (fc_norm).
            cfg["fc_norm"] = False
    return cfg, "linear", trunk, head["proj.weight"]


def native_image_tower(state, vision_cfg, quick_gelu: bool, path) -> tuple[dict, str, dict, torch.Tensor]:
    """The same for open_clip's own ViT, described by the shapes of its weights."""
    visual = take(state, "visual.")
    for key, what in (("attn_pool.", "attention pooling"), ("transformer.resblocks.0.ls_1", "layer scale")):
        if any(k.startswith(key) for k in visual):
            refuse(path, f"visual.{key}* ({what}) has no facetvlp tower")
    if "ln_pre.weight" not in visual or not torch.is_tensor(visual.get("proj")):
        refuse(path, "the native ViT needs visual.ln_pre and a visual.proj matrix")
    conv = visual["conv1.weight"]
    width, patch = conv.shape[0], conv.shape[-1]
    depth = 1 + max(int(k.split(".")[2]) for k in visual if k.startswith("transformer.resblocks."))
    grid = math.isqrt(visual["positional_embedding"].shape[0] - 1)
    head_width = int(vision_cfg.get("head_width", 64))  # open_clip's CLIPVisionCfg default
    mlp_ratio = visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width
    image_size = grid * patch
    size = {384: "small", 512: "medium", 768: "base", 1024: "large", 1280: "huge"}.get(width, "base")
    cfg = dict(
        type="TimmVisionTower", name=f"vit_{size}_patch{patch}_clip_{image_size}", image_size=image_size,
        patch_size=patch, embed_dim=width, depth=depth, num_heads=width // head_width, mlp_ratio=mlp_ratio,
    )
    import timm

    if not timm.is_model(cfg["name"]):
        cfg["name"] = "vit_base_patch16_clip_224"  # every size is given explicitly above
    if quick_gelu:
        cfg["act_layer"] = "quick_gelu"
    return cfg, "linear", {f"visual.{k}": v for k, v in visual.items()}, visual["proj"].T


# -- text tower ------------------------------------------------------------------------------
def hf_text_tower(state, text_cfg, text_path, path) -> tuple[dict, str, dict, dict]:
    """(tower cfg, projection kind, encoder weights, projection weights) of an HF text tower."""
    if text_path is None:
        refuse(path, "text.transformer.* is a Hugging Face encoder: pass text_path, the local "
                     f"directory of '{text_cfg.get('hf_model_name', 'its model')}' (config and tokenizer)")
    from transformers import AutoConfig

    from .towers.text_hf import resolve_model_dir

    hf_config = AutoConfig.from_pretrained(resolve_model_dir(text_path), local_files_only=True)
    if getattr(hf_config, "is_encoder_decoder", False):
        refuse(path, f"{hf_config.model_type} is an encoder-decoder; HFTextTower holds encoders only")
    pooler = text_cfg.get("hf_pooler_type") or HF_DEFAULT_POOLER.get(hf_config.model_type, "mean_pooler")
    encoder = take(state, "text.transformer.")
    has_pooler = any(k.startswith("pooler.") for k in encoder)
    if pooler not in HF_POOLERS:
        refuse(path, f"hf_pooler_type '{pooler}' (supported: {', '.join(HF_POOLERS)})")
    # open_clip's cls_pooler returns the BERT pooler output when the encoder has a pooler layer.
    pool = "pooler" if pooler == "cls_pooler" and has_pooler else HF_POOLERS[pooler]
    if pool != "pooler":
        encoder = {k: v for k, v in encoder.items() if not k.startswith("pooler.")}
    proj = take(state, "text.proj.")
    kind = {frozenset(): "none", frozenset({"weight"}): "linear",
            frozenset({"0.weight", "2.weight"}): "mlp"}.get(frozenset(proj))
    if kind is None:
        refuse(path, f"text projection keys {sorted(proj)} are not linear/mlp without bias")
    # An absolute path, so the written model config works from any working directory; a name
    # that is not a directory (the packaged MiniLM alias) stays as it is.
    path_in_cfg = str(Path(text_path).resolve()) if Path(text_path).is_dir() else os.fspath(text_path)
    cfg = dict(type="HFTextTower", path=path_in_cfg, pool=pool,
               max_length=int(text_cfg.get("context_length", 77)))
    return cfg, kind, encoder, proj


def byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each byte value, in the order OpenAI's BPE vocab lists them:
    the printable Latin-1 bytes stand for themselves, the other bytes take code points from 256."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(others))]


def clip_bpe_tokenizer(bpe_path: str | os.PathLike | None, folder: Path):
    """A transformers CLIPTokenizer equivalent to OpenAI/open_clip's SimpleTokenizer.

    Built from the BPE merges file (``bpe_simple_vocab_16e6.txt.gz``, shipped inside open_clip):
    the vocabulary is the 256 byte symbols, the same with the end-of-word mark, one entry per
    merge, then the start/end-of-text tokens (ids 49406/49407). Written to ``folder`` as
    ``vocab.json`` + ``merges.txt`` (the files of OpenAI's CLIP tokenizer on the hub) and loaded
    from there: every transformers version reads that pair, while the keyword arguments that
    take them from memory changed in transformers 5."""
    from transformers import CLIPTokenizer

    if bpe_path is None:
        package = open_clip_package_dir()
        if package is None:
            raise ConfigError("the native open_clip text tower needs its BPE file: pass bpe_path "
                              "(bpe_simple_vocab_16e6.txt.gz) or install open_clip_torch")
        bpe_path = package / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # line 0: a version header
    symbols = byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}), encoding="utf-8")
    # transformers' slow CLIPTokenizer skips the first line as open_clip does: keep a header
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def native_text_weights(state, width: int) -> dict[str, torch.Tensor]:
    """open_clip text transformer weights under transformers' CLIPTextModel names."""
    out = {
        "text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
        "text_model.final_layer_norm.weight": state["ln_final.weight"],
        "text_model.final_layer_norm.bias": state["ln_final.bias"],
    }
    renames = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
               "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for key, value in take(state, "transformer.resblocks.").items():
        index, rest = key.split(".", 1)
        prefix = f"text_model.encoder.layers.{index}."
        if rest.startswith("attn.in_proj_"):  # one packed q|k|v tensor -> three projections
            kind = rest.rsplit("_", 1)[1]  # weight or bias
            for name, part in zip(("q", "k", "v"), value.split(width, dim=0)):
                out[f"{prefix}self_attn.{name}_proj.{kind}"] = part
            continue
        module, param = rest.rsplit(".", 1)
        if module not in renames:
            raise CheckpointError(f"transformer.resblocks.{key}: no CLIPTextModel counterpart")
        out[f"{prefix}{renames[module]}.{param}"] = value
    return out


def native_text_tower(state, text_cfg, quick_gelu, bpe_path, out_dir: Path, path) -> tuple[dict, str, dict]:
    """Write the native text transformer as a local CLIPTextModel directory; (cfg, kind, proj)."""
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig

    for key, value in (("pool_type", "argmax"), ("no_causal_mask", False), ("embed_cls", False),
                       ("proj_bias", False), ("final_ln_after_pool", False), ("ls_init_value", None)):
        if text_cfg.get(key, value) != value:
            refuse(path, f"text_cfg.{key}={text_cfg[key]!r}: only the OpenAI CLIP text transformer "
                         "(argmax pooling, causal mask) is supported")
    projection = state.get("text_projection")
    if not torch.is_tensor(projection) or projection.ndim != 2:
        refuse(path, "the native text tower needs a text_projection matrix")
    vocab, width = state["token_embedding.weight"].shape
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.resblocks."))
    config = CLIPTextConfig(
        vocab_size=vocab, hidden_size=width, num_hidden_layers=depth,
        num_attention_heads=int(text_cfg.get("heads", 8)),  # open_clip's CLIPTextCfg default
        intermediate_size=state["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        max_position_embeddings=state["positional_embedding"].shape[0],
        hidden_act="quick_gelu" if quick_gelu else "gelu", layer_norm_eps=1e-5,
        projection_dim=projection.shape[1], bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
    text_dir = (out_dir / "text").resolve()
    text_dir.mkdir(parents=True, exist_ok=True)
    config.architectures = ["CLIPTextModel"]
    config.save_pretrained(text_dir)
    weights = {k: v.contiguous() for k, v in native_text_weights(state, width).items()}
    save_file(weights, str(text_dir / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = clip_bpe_tokenizer(bpe_path, text_dir)
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(text_dir)
    cfg = dict(type="HFTextTower", path=os.fspath(text_dir), pool="pooler",
               max_length=config.max_position_embeddings)
    return cfg, "linear", {"weight": projection.T}


# -- the whole model -------------------------------------------------------------------------
def require_native_cfg(cfg: dict, key: str, path) -> None:
    # Head counts are not in the weights (ViT-B/32 has 64-wide heads, ViT-H/14 80-wide): a guess
    # would load without error and compute something else.
    if key not in cfg:
        refuse(path, f"native towers need the open_clip model config ({key}: attention heads are "
                     "not stored in the weights): pass model_cfg, a dict, its JSON file or, with "
                     "open_clip installed, its name such as 'ViT-B-32'")


def load_strict(module: torch.nn.Module, state: dict, where: str, path) -> None:
    # position_ids is a buffer older transformers saved with the weights; it is not a weight.
    state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        refuse(path, f"{where} does not fit (missing {missing[:4]}, unexpected {unexpected[:4]})")


def import_open_clip(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_cfg: Mapping[str, Any] | str | os.PathLike | None = None,
    text_path: str | os.PathLike | None = None,
    quick_gelu: bool | None = None,
    bpe_path: str | os.PathLike | None = None,
) -> tuple[dict, ContrastiveModel]:
    """Convert an open_clip checkpoint; returns (facetvlp model cfg, the loaded model).

    ``model_cfg`` is open_clip's model config (a dict, its JSON file, an open_clip_config.json or
    a bundled open_clip config name such as "ViT-B-32"), needed for model names, pooling and head
    counts, none of which the weights record;
    ``text_path`` the local directory of the HF text model; ``quick_gelu`` whether the native
    towers use QuickGELU (OpenAI's original weights and models fine-tuned from them under a
    ``-quickgelu`` config; it cannot be read from the weights). Writes into ``out_dir``:
    ``model.safetensors`` (loadable with ``facetvlp eval CONFIG --checkpoint``),
    ``facetvlp_model.py`` (``model = dict(...)`` to use as a ``_base_``) and, for a native text
    tower, ``text/`` (a transformers CLIPTextModel directory with its tokenizer).
    """
    from .engine.checkpoint import save_checkpoint

    cfg = read_open_clip_config(model_cfg)
    if quick_gelu is None:
        quick_gelu = bool(cfg.get("quick_gelu", False))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = strip_module_prefix(load_state_dict_file(checkpoint))
    vision_cfg, text_cfg = dict(cfg.get("vision_cfg", {})), dict(cfg.get("text_cfg", {}))

    if any(k.startswith("visual.trunk.") for k in state):
        image_cfg, image_proj, image_weights, image_matrix = timm_image_tower(state, vision_cfg, checkpoint)
        native_vision = False
    elif "visual.class_embedding" in state:
        require_native_cfg(cfg, "vision_cfg", checkpoint)
        image_cfg, image_proj, image_weights, image_matrix = native_image_tower(
            state, vision_cfg, quick_gelu, checkpoint)
        native_vision = True
    else:
        refuse(checkpoint, "no timm trunk (visual.trunk.*) and no ViT (visual.class_embedding): "
                           "ResNet and other image towers are not supported")

    if any(k.startswith("text.transformer.") for k in state):
        text_tower_cfg, text_proj, text_weights, text_proj_weights = hf_text_tower(
            state, text_cfg, text_path, checkpoint)
    elif "token_embedding.weight" in state:
        require_native_cfg(cfg, "text_cfg", checkpoint)
        text_tower_cfg, text_proj, text_proj_weights = native_text_tower(
            state, text_cfg, quick_gelu, bpe_path, out_dir, checkpoint)
        text_weights = None  # already in the written directory
    else:
        refuse(checkpoint, "no text tower (text.transformer.* or token_embedding) in the weights")

    embed_dim = int(image_matrix.shape[0])
    model_cfg_out = dict(
        type="ContrastiveModel",
        towers=dict(image=image_cfg, text=text_tower_cfg),
        embed_dim=embed_dim,
        proj=dict(image=image_proj, text=text_proj),
    )
    if "logit_bias" in state:
        model_cfg_out["init_logit_bias"] = float(state["logit_bias"])
    build_kwargs = {k: v for k, v in model_cfg_out.items() if k != "type"}
    model = ContrastiveModel(**build_kwargs)

    image_tower = model.towers["image"].model
    if native_vision:
        from timm.models.vision_transformer import checkpoint_filter_fn

        image_weights = checkpoint_filter_fn(image_weights, image_tower)
        image_weights = {k: v for k, v in image_weights.items() if not k.startswith("head.")}
    with torch.no_grad():
        load_strict(image_tower, image_weights, "the image trunk", checkpoint)
        if text_weights is not None:
            load_strict(model.towers["text"].model, text_weights, "the text encoder", checkpoint)
        load_strict(model.projections["image"], {"weight": image_matrix}, "the image projection", checkpoint)
        load_strict(model.projections["text"], text_proj_weights, "the text projection", checkpoint)
        if "logit_scale" in state:
            model.logit_scale.copy_(state["logit_scale"].reshape(()))

    tensors = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
    meta = {"format": "facetvlp-weights-1", "source": "open_clip", "checkpoint": Path(checkpoint).name,
            "model": model_cfg_out}
    save_checkpoint(out_dir / WEIGHTS_FILE, tensors, meta)
    (out_dir / CONFIG_FILE).write_text(
        f"# facetvlp model converted from open_clip weights {Path(checkpoint).name}\n"
        f"# weights: {out_dir / WEIGHTS_FILE}\n"
        f"model = {pprint.pformat(model_cfg_out, sort_dicts=False)}\n",
        encoding="utf-8",
    )
    return model_cfg_out, model.eval()
