"""Published Point-BERT / ULIP point-encoder weights into PointBERTTower, with a key report.

Files it reads (local only; safetensors, or torch files under `weights_only=True`):

* Point-BERT (Yu et al. 2022) checkpoints: ``{"base_model": state, ...}``; the pre-training file
  keeps the encoder under ``transformer_q.`` (its momentum copy ``transformer_k.``, the dVAE and the
  masked-modelling heads are not part of the encoder and are reported as unexpected);
* ULIP / ULIP-2 checkpoints: ``{"state_dict": state, "args": Namespace, ...}`` with the point
  encoder under ``point_encoder.`` (``pc_projection`` and the image/text towers are reported as
  unexpected: they belong to the contrastive model, not to the tower);
* a bare state dict of the point encoder; ``module.`` (DDP) prefixes are dropped.

Point-BERT's `PointTransformer` names, and ours (tower.py):

    encoder.first_conv.{0,1,3}   Conv1d(1x1) / BatchNorm1d / Conv1d -> encoder.first.{0,1,3}
    encoder.second_conv.0        Conv1d on [patch max, point] (global first) -> encoder.patch_part
                                 (its first half of the input channels) + encoder.point_part
    encoder.second_conv.{1,3}    BatchNorm1d / Conv1d -> encoder.second.{0,2}
    reduce_dim, cls_token, cls_pos, pos_embed.{0,2}, norm   -> same names
    blocks.blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2} -> transformer.N.(same)

1x1 convolution weights (out, in, 1) become linear weights (out, in). The tower must be built
with Point-BERT's layout (`encoder_style="pointbert"`, `encoder_width=256`, `qkv_bias=False`,
the checkpoint's width/depth/heads); `pointbert_config` reads everything but the head count and
the grouping (num_groups, group_size) from the weights.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from dataclasses import dataclass, field

import torch

from facetvlp.core.errors import CheckpointError
from facetvlp.core.towers.weights import load_state_dict_file

log = logging.getLogger(__name__)

# keys of the tower that a Point-BERT encoder does not have: our own pooling head
OWN_KEYS = ("pool_proj.",)
_RENAMES = [
    (r"^encoder\.first_conv\.(\d+)\.", r"encoder.first.\1."),
    (r"^encoder\.second_conv\.1\.", "encoder.second.0."),
    (r"^encoder\.second_conv\.3\.", "encoder.second.2."),
    (r"^blocks\.blocks\.(\d+)\.", r"transformer.\1."),
]
_SAME = ("reduce_dim.", "cls_token", "cls_pos", "pos_embed.", "norm.")


@dataclass
class KeyReport:
    """What a conversion did, key by key (names as in the file for `unexpected`, as in the
    tower for `loaded` and `missing`)."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.path}: loaded {len(self.loaded)} tensors into the point tower, "
                f"missing {len(self.missing)} {self.missing[:6]}, "
                f"unexpected {len(self.unexpected)} {self.unexpected[:6]}")


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat state dict inside a Point-BERT / ULIP file (safetensors or weights-only torch)."""
    # ULIP stores its argparse Namespace beside the weights: allow exactly that class
    state = load_state_dict_file(path, wrappers=("base_model", "state_dict", "model"),
                                 allowed_globals=[argparse.Namespace])
    if not state:
        raise CheckpointError(f"{os.fspath(path)}: not a state dict of tensors")
    return {re.sub(r"^(module\.)+", "", k): v for k, v in state.items()}


def _encoder_subtree(
    state: dict[str, torch.Tensor],
) -> tuple[str, dict[str, torch.Tensor], list[str]]:
    """(prefix, the point encoder's own keys without it, the file keys that are not part of it)."""
    for prefix in ("point_encoder.", "transformer_q.", "base_model."):
        if any(k.startswith(prefix) for k in state):
            inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            outside = [k for k in state if not k.startswith(prefix)]
            return prefix, inside, outside
    return "", dict(state), []


def convert_pointbert_state_dict(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Point-BERT encoder keys -> PointBERTTower keys; returns (converted, unused file keys)."""
    prefix, encoder, unused = _encoder_subtree(state)
    out: dict[str, torch.Tensor] = {}
    for key, value in encoder.items():
        if key.startswith("encoder.second_conv.0."):
            continue  # split below
        new = key
        for pattern, repl in _RENAMES:
            new = re.sub(pattern, repl, new)
        if new == key and not key.startswith(_SAME):
            unused.append(prefix + key)
            continue
        if key.startswith("encoder.") and value.ndim == 3 and value.shape[-1] == 1:
            value = value[..., 0]  # Conv1d(k=1) -> Linear
        out[new] = value
    joined_w = encoder.get("encoder.second_conv.0.weight")
    if joined_w is not None:
        joined_w = joined_w[..., 0] if joined_w.ndim == 3 else joined_w
        half = joined_w.shape[1] // 2
        # Point-BERT concatenates [patch max, point feature]: the first half acts on the max
        out["encoder.patch_part.weight"] = joined_w[:, :half]
        out["encoder.point_part.weight"] = joined_w[:, half:]
    if "encoder.second_conv.0.bias" in encoder:
        out["encoder.point_part.bias"] = encoder["encoder.second_conv.0.bias"]
    return out, unused


def pointbert_config(state: dict[str, torch.Tensor]) -> dict:
    """PointBERTTower arguments read off converted weights (heads and grouping excepted)."""
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"transformer\.(\d+)\.", k)))
    return dict(
        width=state["cls_token"].shape[-1],
        depth=depth,
        in_channels=state["encoder.first.0.weight"].shape[1],
        encoder_hidden=(state["encoder.first.0.weight"].shape[0],
                        state["encoder.first.3.weight"].shape[0]),
        encoder_style="pointbert" if "encoder.first.1.running_mean" in state else "layernorm",
        encoder_width=state["reduce_dim.weight"].shape[1] if "reduce_dim.weight" in state else None,
        qkv_bias="transformer.0.attn.qkv.bias" in state,
        mlp_ratio=state["transformer.0.mlp.fc1.weight"].shape[0] / state["cls_token"].shape[-1],
    )


def load_pointbert_weights(tower: torch.nn.Module, path: str | os.PathLike,
                           strict: bool = True) -> KeyReport:
    """Load a published Point-BERT / ULIP point encoder into `tower`; returns the key report.

    A shape that does not fit always raises CheckpointError; with `strict`, so does a tower key
    the file does not provide (except the tower's own pooling head, OWN_KEYS) and an encoder key
    of the file the tower has no place for (e.g. BatchNorm statistics for a LayerNorm tower)."""
    path = os.fspath(path)
    converted, unused = convert_pointbert_state_dict(read_checkpoint(path))
    own = tower.state_dict()
    report = KeyReport(path, unexpected=sorted(unused))
    no_place = []
    for key, value in converted.items():
        if key not in own:
            no_place.append(key)
            report.unexpected.append(key)
        elif own[key].shape != value.shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)} in the file, "
                                  f"{tuple(own[key].shape)} in the tower: build the tower with "
                                  f"the checkpoint's layout (pointbert_config)")
        else:
            report.loaded.append(key)
    report.missing = [k for k in own if k not in converted]
    essential = [k for k in report.missing if not k.startswith(OWN_KEYS)]
    if strict and (essential or no_place):
        raise CheckpointError(f"{path}: does not fit the tower's layout: no weights for "
                              f"{len(essential)} tower keys {essential[:4]}, no place for "
                              f"{len(no_place)} encoder keys {no_place[:4]} (pointbert_config "
                              f"gives the layout of the file)")
    tower.load_state_dict({k: converted[k] for k in report.loaded}, strict=False)
    log.info(report.summary())
    return report
