"""Dense image-text similarity without training (MaskCLIP, Zhou et al., ECCV 2022).

A contrastive ViT's patch tokens after the last block are not aligned with text: the last block's
query-key attention mixes them toward the global token. MaskCLIP's observation is that the *value*
path of that attention keeps each patch's own content in the joint space. So the last block is
replaced by: value projection -> output projection -> the final norms -> the image projection, with
no residual and no MLP. CNN towers have no such attention; their feature-map cells go through the
projection directly (`ContrastiveModel.patch_embeddings`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import project_dense
from .owl_box import token_grid


def value_path_tokens(vit, images: torch.Tensor) -> torch.Tensor:
    """(B, N, W) patch features of a timm VisionTransformer through MaskCLIP's value path."""
    x = vit.patch_embed(images)
    x = vit._pos_embed(x)
    x = vit.norm_pre(x)
    for block in vit.blocks[:-1]:
        x = block(x)
    last = vit.blocks[-1]
    attn = last.attn
    batch, length, _ = x.shape
    qkv = attn.qkv(last.norm1(x)).reshape(batch, length, 3, -1)
    value = attn.norm(qkv[:, :, 2])  # timm's optional post-attention norm (Identity by default)
    x = last.ls1(attn.proj(value))
    x = vit.fc_norm(vit.norm(x))  # whichever of the two the pooled feature went through
    return x[:, vit.num_prefix_tokens :]


@torch.no_grad()
def dense_image_embeddings(model, images: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) L2-normalised patch embeddings in the model's joint image-text space: the
    value path for a ViT, `ContrastiveModel.patch_embeddings` (feature-map cells) otherwise."""
    tower = model.towers["image"]
    if not getattr(tower, "is_vit", False):
        return model.patch_embeddings({"image": images})
    tokens = value_path_tokens(tower.model, images)
    rows, cols = token_grid(tokens.shape[1], *images.shape[-2:])
    grid = tokens.transpose(1, 2).reshape(images.shape[0], -1, rows, cols)
    return project_dense(model.projections["image"], grid)


@torch.no_grad()
def similarity_maps(model, images: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) cosine similarity of every pixel to each of K normalised text embeddings,
    bilinearly upsampled from the patch grid to the input size."""
    dense = dense_image_embeddings(model, images)
    sims = torch.einsum("bdhw,kd->bkhw", dense, text_embeds.to(dense.dtype))
    return F.interpolate(sims, size=images.shape[-2:], mode="bilinear", align_corners=False)
