"""AdamW parameter groups for fine-tuning: encoder vs head learning rates, layer-wise LR decay
(BEiT / MAE fine-tuning), no weight decay on norms, biases, position embeddings and temperatures.

Configured in the `optim` section: `optim = dict(lr=..., weight_decay=..., paramwise=dict(
encoder_lr_mult=0.1, layer_decay=0.75))`. A parameter of encoder layer `l` (0 = before the first
block, i + 1 = block i, depth + 1 = after the last) gets
`lr * encoder_lr_mult * layer_decay ** (depth + 1 - l)`; everything outside the encoders (heads,
pyramid) gets `lr`.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from torch import nn

from ..errors import ConfigError

PARAMWISE_KEYS = ("encoder_lr_mult", "layer_decay")
NO_DECAY_SUFFIXES = ("pos_embed", "cls_token", "reg_token", "position_embeddings", "logit_scale",
                     "logit_bias")


def wants_weight_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim >= 2 and not name.endswith(NO_DECAY_SUFFIXES)


def layer_ids(module: nn.Module, blocks: Sequence[nn.Module]) -> dict[str, int]:
    """Parameter name (within `module`) -> layer id. Parameters outside the blocks count as
    before them (stem, patch / position embeddings) until the first block parameter is seen in
    registration order, and after them (final norm) from then on."""
    block_of = {id(p): i for i, block in enumerate(blocks) for p in block.parameters()}
    ids, past_first_block = {}, False
    for name, param in module.named_parameters():
        if id(param) in block_of:
            ids[name] = block_of[id(param)] + 1
            past_first_block = True
        else:
            ids[name] = len(blocks) + 1 if past_first_block else 0
    return ids


def paramwise_options(optim_cfg: Mapping) -> tuple[float, float]:
    paramwise = dict(optim_cfg.get("paramwise") or {})
    unknown = sorted(set(paramwise) - set(PARAMWISE_KEYS))
    if unknown:
        raise ConfigError(f"optim.paramwise: unknown keys {unknown}; valid: {list(PARAMWISE_KEYS)}")
    return float(paramwise.get("encoder_lr_mult", 1.0)), float(paramwise.get("layer_decay", 1.0))


def layerwise_param_groups(model: nn.Module, optim_cfg: Mapping,
                           encoders: Mapping[str, tuple[nn.Module, Sequence[nn.Module]]],
                           encoder_tops: Iterable[str] = ()) -> list[dict]:
    """Groups for `model`'s trainable parameters.

    encoders: name prefix in `model` ("towers.image.") -> (that module, its blocks in order).
    encoder_tops: prefixes of encoder parts above every block (projections): layer depth + 1.
    """
    lr = float(optim_cfg.get("lr", 5e-4))
    weight_decay = float(optim_cfg.get("weight_decay", 0.0))
    encoder_lr_mult, layer_decay = paramwise_options(optim_cfg)
    scale_of: dict[str, tuple[str, float]] = {}
    for prefix, (module, blocks) in encoders.items():
        depth = len(blocks)
        for name, layer in layer_ids(module, blocks).items():
            scale = encoder_lr_mult * layer_decay ** (depth + 1 - layer)
            scale_of[prefix + name] = (f"{prefix}layer{layer}", scale)
    tops = tuple(encoder_tops)
    groups: dict[tuple[str, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name in scale_of:
            label, scale = scale_of[name]
        elif tops and name.startswith(tops):
            label, scale = "encoder_top", encoder_lr_mult
        else:
            label, scale = "head", 1.0
        decay = wants_weight_decay(name, param)
        group = groups.setdefault((label, decay), {
            "name": f"{label}{'' if decay else '.no_decay'}", "params": [], "lr": lr * scale,
            "weight_decay": weight_decay if decay else 0.0})
        group["params"].append(param)
    return list(groups.values())
