"""VolumeSegmentationModel: MONAI's 3D segmentation networks (UNETR, SwinUNETR, UNet) under the
task-model contract, with UNETR's transformer started from a VLP ViT tower.

What starts from the VLP tower (`facetvlp finetune --from` / `init_encoder_from`) and what from
scratch:
- UNETR: the 12 transformer blocks (norms, attention qkv + output projection, MLP) and the final
  norm, when width, MLP size and depth agree (and `num_heads` equals the tower's: the weights do
  not show it); the patch embedding, inflated from the 2D one (channels adapted as timm does,
  then repeated over depth and divided by it, I3D-style) when the patch sizes agree. The 3D
  position embedding and the whole convolutional decoder start from scratch.
- SwinUNETR and UNet: everything from scratch (no 2D ViT maps onto them).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from monai.inferers import sliding_window_inference
from monai.networks import nets
from timm.models import adapt_input_conv
from torch import nn

from ..errors import ConfigError
from ..registry import MODELS
from .encoder_mode import keep_frozen_norm_stats, trainable_spec
from .param_groups import layerwise_param_groups

NETS = ("UNETR", "SwinUNETR", "UNet")
ENCODERS = {"UNETR": "vit", "SwinUNETR": "swinViT"}  # the transformer encoder inside each net
VLP_VIT = "towers.image.model."  # a timm ViT image tower inside a ContrastiveModel
# timm ViT block parameter -> MONAI TransformerBlock parameter (same tensor layouts: MONAI's
# qkv is split as (qkv, heads, head_dim) like timm's)
BLOCK_NAMES = {"norm1": "norm1", "attn.qkv": "attn.qkv", "attn.proj": "attn.out_proj",
               "norm2": "norm2", "mlp.fc1": "mlp.linear1", "mlp.fc2": "mlp.linear2"}


def build_net(net: str, in_channels: int, num_classes: int, roi_size: Sequence[int],
              kwargs: Mapping[str, Any]) -> nn.Module:
    if net == "UNETR":
        # qkv_bias=True: timm ViTs have qkv biases, so a VLP tower's attention maps over whole
        return nets.UNETR(in_channels=in_channels, out_channels=num_classes, img_size=roi_size,
                          **{"qkv_bias": True, **kwargs})
    if net == "SwinUNETR":
        return nets.SwinUNETR(in_channels=in_channels, out_channels=num_classes, **kwargs)
    if net == "UNet":
        defaults = {"channels": (16, 32, 64, 128), "strides": (2, 2, 2), "num_res_units": 1}
        return nets.UNet(spatial_dims=3, in_channels=in_channels, out_channels=num_classes,
                         **{**defaults, **kwargs})
    raise ConfigError(f"model.net must be one of {NETS}, got {net!r}")


@MODELS.register_module()
class VolumeSegmentationModel(nn.Module):
    """(B, C, D, H, W) volumes -> (B, K, D, H, W) logits. Training patches are `roi_size`;
    `predict` slides a `roi_size` window over any other size (MONAI sliding_window_inference).

    encoder: "frozen" | "full" | "last_n=N" for the transformer encoder of UNETR (`net.vit`) or
    SwinUNETR (`net.swinViT`); UNet has no separate encoder and takes "full" only.
    """

    def __init__(self, net: str = "UNETR", in_channels: int = 1, num_classes: int = 2,
                 roi_size: Sequence[int] = (96, 96, 96), encoder: str = "full",
                 sw_batch_size: int = 2, overlap: float = 0.25, **net_kwargs):
        super().__init__()
        self.net_name, self.num_classes = net, int(num_classes)
        self.roi_size = tuple(int(s) for s in roi_size)
        self.net = build_net(net, in_channels, num_classes, self.roi_size, net_kwargs)
        self.towers = nn.ModuleDict()  # the MONAI network owns its encoder
        self.sw_batch_size, self.overlap = sw_batch_size, overlap
        spec = trainable_spec(encoder)
        encoder_module = self.encoder_module()
        if encoder_module is None:
            if spec != "all":
                raise ConfigError(f"model.encoder: {net} has no separate encoder; use 'full'")
        elif spec != "all":
            encoder_module.requires_grad_(False)
            for block in (self.encoder_blocks()[-spec:] if isinstance(spec, int) and spec else []):
                block.requires_grad_(True)
            if isinstance(spec, int) and spec and hasattr(encoder_module, "norm"):
                encoder_module.norm.requires_grad_(True)

    tokenize = None

    def encoder_module(self) -> nn.Module | None:
        name = ENCODERS.get(self.net_name)
        return getattr(self.net, name) if name else None

    def encoder_blocks(self) -> list[nn.Module]:
        if self.net_name == "UNETR":
            return list(self.net.vit.blocks)
        if self.net_name == "SwinUNETR":
            swin = self.net.swinViT
            return [swin.layers1, swin.layers2, swin.layers3, swin.layers4]
        return []

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.encoder_module() is not None:
            keep_frozen_norm_stats(nn.ModuleDict({"encoder": self.encoder_module()}))
        return self

    def forward(self, batch: dict, mask_ratio: float = 0.0, with_tokens: bool = False) -> dict:
        if mask_ratio:
            raise ConfigError("engine.mask_ratio must be 0 for segmentation: every voxel is predicted")
        return {"seg_logits": self.net(batch["image"])}

    @torch.no_grad()
    def predict(self, batch: dict) -> dict:
        volume = batch["image"]
        if tuple(volume.shape[-3:]) == self.roi_size:
            logits = self.net(volume)
        else:  # larger (or smaller: padded) than the training patch
            logits = sliding_window_inference(volume, self.roi_size, self.sw_batch_size, self.net,
                                              overlap=self.overlap, mode="gaussian")
        return {"seg_logits": logits, "seg": logits.argmax(1)}

    def param_groups(self, optim_cfg: Mapping) -> list[dict]:
        encoder = self.encoder_module()
        encoders = {}
        if encoder is not None:
            encoders[f"net.{ENCODERS[self.net_name]}."] = (encoder, self.encoder_blocks())
        return layerwise_param_groups(self, optim_cfg, encoders)

    def encoder_state_from(self, state: Mapping[str, torch.Tensor]) -> dict[str, tuple[str, torch.Tensor]]:
        """UNETR: a VLP timm ViT's blocks, final norm and (inflated) patch embedding; other
        networks take nothing from a 2D tower."""
        if self.net_name != "UNETR":
            return {}
        mapped = {}
        for key, value in state.items():
            if not key.startswith(VLP_VIT):
                continue
            name = key[len(VLP_VIT):]
            parts = name.split(".")
            if parts[0] == "blocks" and len(parts) >= 4:
                inner, leaf = ".".join(parts[2:-1]), parts[-1]
                if inner in BLOCK_NAMES:
                    mapped[f"net.vit.blocks.{parts[1]}.{BLOCK_NAMES[inner]}.{leaf}"] = (key, value)
            elif name in ("norm.weight", "norm.bias"):
                mapped[f"net.vit.{name}"] = (key, value)
            elif name == "patch_embed.proj.bias":
                mapped["net.vit.patch_embedding.patch_embeddings.bias"] = (key, value)
            elif name == "patch_embed.proj.weight":
                target = "net.vit.patch_embedding.patch_embeddings.weight"
                mapped[target] = (key, self.inflate_patch_embedding(value))
        return mapped

    def inflate_patch_embedding(self, weight: torch.Tensor) -> torch.Tensor:
        """(D, C, p, p) 2D patch projection -> (D, C', p, p, p): channels adapted to the volume's
        (timm `adapt_input_conv`: summed to one channel, or repeated), then repeated over depth and
        divided by p, so a volume constant along depth embeds like its 2D slice. Returned as is
        when the patch sizes differ (the report then lists a shape mismatch)."""
        target = self.net.vit.patch_embedding.patch_embeddings.weight
        if target.ndim != 5 or tuple(target.shape[-2:]) != tuple(weight.shape[-2:]):
            return weight
        adapted = adapt_input_conv(target.shape[1], weight)
        depth = target.shape[2]
        return adapted.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth
