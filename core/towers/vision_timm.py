"""Any timm model as an image tower, with FLIP patch masking for ViTs."""

from __future__ import annotations

import logging
from typing import Sequence

import timm
import torch
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices
from timm.models.vision_transformer import VisionTransformer

from ..errors import CheckpointError, ConfigError
from ..registry import TOWERS
from .base import LevelSpec, Tower, TowerOutput
from .weights import load_state_dict_file

log = logging.getLogger(__name__)


@TOWERS.register_module()
class TimmVisionTower(Tower):
    modality = "image"

    def __init__(
        self,
        name: str,
        checkpoint: str | None = None,
        image_size: int | None = None,
        in_chans: int = 3,
        pool: str | None = None,
        drop_path_rate: float = 0.0,
        **timm_kwargs,
    ):
        super().__init__()
        kwargs = dict(pretrained=False, num_classes=0, in_chans=in_chans, **timm_kwargs)
        if image_size is not None:
            kwargs["img_size"] = image_size
        if pool is not None:
            kwargs["global_pool"] = pool
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        try:
            self.model = timm.create_model(name, **kwargs)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"timm cannot build '{name}' with {kwargs}: {exc}") from exc
        self.name = name
        self.is_vit = isinstance(self.model, VisionTransformer)
        self.width = self.model.num_features
        if checkpoint:
            self.load_weights(checkpoint)

    def load_weights(self, path: str) -> None:
        state = load_state_dict_file(path)
        # A classifier head in the file is irrelevant to a feature tower.
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc.", "classifier."))}
        result = self.model.load_state_dict(state, strict=False)
        if result.missing_keys:
            raise CheckpointError(
                f"{path}: does not fit timm '{self.name}': missing {result.missing_keys[:5]}..."
            )
        if result.unexpected_keys:
            log.warning("%s: ignored %d unexpected keys", path, len(result.unexpected_keys))

    # -- forward ----------------------------------------------------------------------------
    def forward(self, batch: dict, mask_ratio: float = 0.0) -> TowerOutput:
        images = batch["image"] if isinstance(batch, dict) else batch
        if self.is_vit:
            return self._forward_vit(images, mask_ratio)
        if mask_ratio > 0:
            raise ConfigError(f"patch masking needs a ViT; '{self.name}' is not one")
        features = self.model.forward_features(images)
        pooled = self.model.forward_head(features, pre_logits=True)
        tokens = features.flatten(2).transpose(1, 2) if features.ndim == 4 else features
        return TowerOutput(pooled, tokens, None)

    def _forward_vit(self, images: torch.Tensor, mask_ratio: float) -> TowerOutput:
        vit = self.model
        x = vit.patch_embed(images)
        x = vit._pos_embed(x)
        if mask_ratio > 0:
            x = random_patch_mask(x, mask_ratio, vit.num_prefix_tokens)
        x = vit.patch_drop(x)
        x = vit.norm_pre(x)
        if vit.grad_checkpointing and torch.is_grad_enabled():
            x = checkpoint_seq(vit.blocks, x)
        else:
            x = vit.blocks(x)
        x = vit.norm(x)
        pooled = vit.forward_head(x, pre_logits=True)
        return TowerOutput(pooled, x[:, vit.num_prefix_tokens :], None)

    def forward_levels(self, batch: dict, indices: Sequence[int] | int = 4) -> list[torch.Tensor]:
        """(B, C, h, w) maps from several depths (timm `forward_intermediates`); an int n takes
        the last n of `feature_info` (blocks of a ViT, stages of a CNN)."""
        images = batch["image"] if isinstance(batch, dict) else batch
        return self.model.forward_intermediates(images, indices=indices, intermediates_only=True)

    def level_specs(self, indices: Sequence[int] | int = 4) -> list[LevelSpec]:
        info = self.model.feature_info
        taken, _ = feature_take_indices(len(info), indices)
        return [LevelSpec(int(info[i]["num_chs"]), int(info[i]["reduction"])) for i in taken]

    def forward_dense(self, batch: dict) -> torch.Tensor:
        images = batch["image"] if isinstance(batch, dict) else batch
        if not self.is_vit:
            features = self.model.forward_features(images)
            if features.ndim != 4:
                raise ConfigError(f"timm '{self.name}' gives no (B, C, h, w) feature map")
            return features
        tokens = self._forward_vit(images, 0.0).tokens
        patch_embed = self.model.patch_embed
        grid = (patch_embed.dynamic_feat_size(images.shape[-2:]) if self.model.dynamic_img_size
                else patch_embed.grid_size)
        return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)

    # -- freezing / memory ------------------------------------------------------------------
    def blocks(self):
        for name in ("blocks", "stages"):
            found = getattr(self.model, name, None)
            if found is not None and len(found):
                return list(found)
        # other CNNs (ResNet's layer1..4): the stages timm lists in feature_info, stem left out
        stages = [self.model.get_submodule(info["module"]) for info in self.model.feature_info]
        return [stage for stage in stages if any(True for _ in stage.parameters())]

    def final_norm(self):
        return getattr(self.model, "norm", None)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self.model.set_grad_checkpointing(enabled)


def random_patch_mask(tokens: torch.Tensor, ratio: float, num_prefix: int) -> torch.Tensor:
    """FLIP: keep a random (1 - ratio) share of patch tokens per image; prefix tokens always stay.

    The kept tokens stay in their original order, so position embeddings (already added) are
    untouched and the encoder sees a shorter sequence: that is where FLIP's speed-up comes from.
    """
    prefix, patches = tokens[:, :num_prefix], tokens[:, num_prefix:]
    batch, length, width = patches.shape
    keep = max(1, int(round(length * (1.0 - ratio))))
    noise = torch.rand(batch, length, device=tokens.device)
    kept_idx = noise.argsort(dim=1)[:, :keep].sort(dim=1).values
    kept = patches.gather(1, kept_idx.unsqueeze(-1).expand(-1, -1, width))
    return torch.cat([prefix, kept], dim=1)
