"""Start a task model's encoder from a pre-training checkpoint, by key, not strictly, with a report.

Sources: a facetvlp training checkpoint (a work dir, its checkpoints/ dir or a step file) or the
`model.safetensors` of `facetvlp import-openclip`; both hold the ContrastiveModel under
`model.model.`. The task model maps those names onto its own (`encoder_state_from`; by default
`towers.*`, `projections.*` and the fusion encoder's `fusion.*` keep their names), ViT position embeddings are resampled to the
model's patch grid, and whatever else fits in name and shape is loaded. The report says what was
loaded, resampled, left at its initialisation (missing), not used (unexpected) and refused for its
shape; nothing of the encoder matching at all is a CheckpointError.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import torch
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ..engine.checkpoint import load_checkpoint, model_state, resolve_checkpoint
from ..errors import CheckpointError

log = logging.getLogger(__name__)

MODEL_PREFIX = "model.model."  # the ContrastiveModel inside a training / imported checkpoint
#: What the default mapping takes by name: a model without a fusion encoder reports `fusion.*` as
#: unused, one with it loads the pre-trained fusion layers and heads.
ENCODER_PARTS = ("towers.", "projections.", "fusion.")


@dataclass
class EncoderLoadReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    resampled: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)

    def format(self) -> str:
        def groups(keys) -> str:
            counts = Counter(".".join(k.split(".")[:2]) for k in keys)
            return ", ".join(f"{name}: {n}" for name, n in counts.most_common()) or "-"

        lines = [f"encoder initialised from {self.source}",
                 f"  loaded      {len(self.loaded):5d}  ({groups(self.loaded)})",
                 f"  resampled   {len(self.resampled):5d}  " + "; ".join(
                     f"{k} {list(a)} -> {list(b)}" for k, a, b in self.resampled),
                 f"  mismatched  {len(self.mismatched):5d}  " + "; ".join(
                     f"{k} file {list(a)} vs model {list(b)}" for k, a, b in self.mismatched),
                 f"  missing     {len(self.missing):5d}  (start from their initialisation: "
                 f"{groups(self.missing)})",
                 f"  unexpected  {len(self.unexpected):5d}  (in the file, unused here: "
                 f"{groups(self.unexpected)})"]
        return "\n".join(lines)


def resample_position_embedding(model: nn.Module, key: str, value: torch.Tensor,
                                target: torch.Tensor) -> torch.Tensor | None:
    """A timm ViT's `pos_embed` from another image size, resampled to this model's patch grid
    (bicubic, prefix tokens kept); None when `key` is not such an embedding."""
    if not key.endswith("pos_embed") or value.ndim != 3 or value.shape[-1] != target.shape[-1]:
        return None
    owner = model.get_submodule(key.rsplit(".", 1)[0]) if "." in key else model
    if not isinstance(owner, VisionTransformer):
        return None
    prefix = 0 if owner.no_embed_class else owner.num_prefix_tokens
    side = math.isqrt(value.shape[1] - prefix)
    if side * side != value.shape[1] - prefix:
        return None
    return resample_abs_pos_embed(value, new_size=list(owner.patch_embed.grid_size),
                                  old_size=[side, side], num_prefix_tokens=prefix)


def read_pretrained_state(path) -> tuple[dict[str, torch.Tensor], str]:
    tensors, meta = load_checkpoint(path)
    state = model_state(tensors, MODEL_PREFIX)
    file = resolve_checkpoint(path)
    if not state:
        raise CheckpointError(f"{file}: no model weights under '{MODEL_PREFIX}' "
                              "(not a facetvlp training checkpoint or imported model)")
    kind = "open_clip import" if meta.get("source") == "open_clip" else "facetvlp checkpoint"
    return state, f"{file} ({kind}, step {meta.get('step', '-')})"


def load_encoder(model: nn.Module, path) -> EncoderLoadReport:
    """Load what fits of a pre-trained model into `model`; log and return the report."""
    state, source = read_pretrained_state(path)
    mapper = getattr(model, "encoder_state_from", None)
    mapped = mapper(state) if mapper is not None else {
        k: (k, v) for k, v in state.items() if k.startswith(ENCODER_PARTS)}
    own = model.state_dict()
    report = EncoderLoadReport(source=source)
    used = {source_key for source_key, _ in mapped.values()}
    report.unexpected = sorted(k for k in state if k not in used)
    to_load = {}
    for key, (source_key, value) in mapped.items():
        if key not in own:
            report.unexpected.append(source_key)
            continue
        if value.shape != own[key].shape:
            resampled = resample_position_embedding(model, key, value, own[key])
            if resampled is None or resampled.shape != own[key].shape:
                report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
                continue
            report.resampled.append((key, tuple(value.shape), tuple(own[key].shape)))
            value = resampled
        to_load[key] = value.to(own[key].dtype)
    if not to_load:
        raise CheckpointError(f"{source}: nothing of the encoder matched this model "
                              f"({len(report.mismatched)} shape mismatches, "
                              f"{len(report.unexpected)} unused tensors)")
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    report.missing = sorted(k for k in own if k not in to_load)
    log.info("%s", report.format())
    return report
