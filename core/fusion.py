"""FusionEncoder: an image-grounded text encoder (ALBEF, Li et al. 2021; BLIP, Li et al. 2022).

The text tower's token features pass through ``depth`` transformers ``BertLayer``s built with
``add_cross_attention=True``: self-attention over the caption, cross-attention into the image
tower's patch tokens, feed-forward. Two heads read the fused tokens:

- ITM: the first token ([CLS]) -> 2 logits (0 = not matched, 1 = matched);
- MLM: every token -> the text vocabulary, decoded with the text tower's own word embeddings
  (tied, as BERT ties its LM head); the transform before it and the output bias come from the
  text model's MLM head when its safetensors weights have one (``cls.predictions.*``), else
  start fresh.

``init="text_tower"`` copies the text tower's last ``depth`` layers (self-attention and
feed-forward weights); the cross-attention always starts fresh. The text tower stays whole, so the
copied layers run a second time on its output, now with the image to attend to (ALBEF instead
splits one BERT into a text half and a fusion half). ``init="scratch"`` draws every weight fresh,
at the text tower's width with ``heads`` attention heads.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

INITS = ("text_tower", "scratch")


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) bool, True = real token -> (B, 1, 1, T) additive attention mask (0 or dtype min),
    the form BertLayer's eager and SDPA attention both add to their scores."""
    return (~mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def bert_config_of(text_tower, heads: int | None, dropout: float | None):
    """The BertConfig of the fusion layers: the text model's own config when it has one (so its
    layers can be copied), else one at the tower's width."""
    from transformers import BertConfig

    hf_config = getattr(getattr(text_tower, "model", None), "config", None)
    if hf_config is not None:
        config = BertConfig(**{k: v for k, v in hf_config.to_dict().items()
                               if k in BertConfig().to_dict() and k != "transformers_version"})
        config._attn_implementation = hf_config._attn_implementation
        if heads is not None and heads != config.num_attention_heads:
            raise ConfigError(f"heads={heads} differs from the text model's "
                              f"{config.num_attention_heads}: leave it out", key="heads")
    else:
        if heads is None:
            raise ConfigError("a text tower without a transformers config needs heads=N", key="heads")
        width = text_tower.width
        config = BertConfig(hidden_size=width, num_attention_heads=heads, intermediate_size=4 * width,
                            hidden_act="gelu")
    if dropout is not None:
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = dropout
    # BertLayer builds cross-attention only for a decoder; the fusion encoder reads the whole
    # caption (bidirectional), so each layer's self-attention is made non-causal below.
    config.is_decoder, config.add_cross_attention = True, True
    return config


class FusionEncoder(nn.Module):
    def __init__(self, config, image_width: int, depth: int, itm: bool = True,
                 mlm_vocab_size: int | None = None):
        super().__init__()
        from transformers.models.bert.modeling_bert import BertLayer, BertPredictionHeadTransform

        self.width = config.hidden_size
        self.image_in = nn.Sequential(nn.LayerNorm(image_width), nn.Linear(image_width, self.width))
        self.layers = nn.ModuleList(BertLayer(config, layer_idx=i) for i in range(depth))
        for layer in self.layers:
            layer.attention.self.is_causal = False
        self.itm_head = nn.Linear(self.width, 2) if itm else None
        self.mlm_transform = BertPredictionHeadTransform(config) if mlm_vocab_size else None
        self.mlm_bias = nn.Parameter(torch.zeros(mlm_vocab_size)) if mlm_vocab_size else None

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor, image: torch.Tensor,
                image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, W) text tokens attend to (B, N, W_image) image tokens -> (B, T, W) fused."""
        if image_mask is None:
            image_mask = torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        context = self.image_in(image)
        self_mask = additive_mask(text_mask.bool(), text.dtype)
        cross_mask = additive_mask(image_mask.bool(), text.dtype)
        for layer in self.layers:
            text = layer(text, attention_mask=self_mask, encoder_hidden_states=context,
                         encoder_attention_mask=cross_mask)
        return text

    def match_logits(self, text, text_mask, image, image_mask=None) -> torch.Tensor:
        """(B, 2) ITM logits of the pairs (image b, text b)."""
        if self.itm_head is None:
            raise ConfigError("this fusion encoder was built with itm=False", key="fusion.itm")
        return self.itm_head(self(text, text_mask, image, image_mask)[:, 0])

    def mlm_logits(self, fused: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """(B, T, V) vocabulary logits of fused tokens, decoded with the tied word embeddings."""
        if self.mlm_transform is None:
            raise ConfigError("this fusion encoder was built with mlm=False", key="fusion.mlm")
        return F.linear(self.mlm_transform(fused), word_embeddings, self.mlm_bias)


def build_fusion(text_tower, image_width: int, depth: int = 2, init: str = "text_tower",
                 heads: int | None = None, dropout: float | None = None, itm: bool = True,
                 mlm: bool = True, mlm_probability: float = 0.15) -> "FusionEncoder":
    """The `model.fusion=dict(...)` of a ContrastiveModel (see the module docstring)."""
    if init not in INITS:
        raise ConfigError(f"init must be one of {INITS}, got {init!r}", key="init")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ConfigError(f"depth must be an int >= 1, got {depth!r}", key="depth")
    if not 0.0 < float(mlm_probability) < 1.0:
        raise ConfigError(f"mlm_probability must be in (0, 1), got {mlm_probability!r}",
                          key="mlm_probability")
    if not (itm or mlm):
        raise ConfigError("a fusion encoder with neither itm nor mlm would train nothing", key="itm")
    config = bert_config_of(text_tower, heads, dropout)
    vocab = text_tower.mlm_vocabulary() if mlm and hasattr(text_tower, "mlm_vocabulary") else None
    if mlm and vocab is None:
        raise ConfigError(f"mlm=True needs a text tower with a mask token ({type(text_tower).__name__} "
                          "has none); set mlm=False", key="mlm")
    fusion = FusionEncoder(config, image_width, depth, itm=itm,
                           mlm_vocab_size=vocab.embeddings.num_embeddings if vocab else None)
    fusion.mlm_probability = float(mlm_probability)
    if init == "text_tower":
        copy_text_layers(fusion, text_tower.blocks())
        head = text_tower.mlm_head_state() if vocab is not None else None
        if head is not None:
            fusion.mlm_transform.load_state_dict(head[0])
            with torch.no_grad():
                fusion.mlm_bias.copy_(head[1])
    return fusion


def copy_text_layers(fusion: FusionEncoder, text_layers: Sequence[nn.Module]) -> None:
    """Self-attention and feed-forward weights of the text tower's last len(fusion.layers) layers."""
    depth = len(fusion.layers)
    if len(text_layers) < depth:
        raise ConfigError(f"init='text_tower' needs >= {depth} text layers, the tower has "
                          f"{len(text_layers)}", key="depth")
    for target, source in zip(fusion.layers, list(text_layers)[-depth:]):
        missing, unexpected = target.load_state_dict(copy.deepcopy(source.state_dict()), strict=False)
        if unexpected or any(not k.startswith("crossattention.") for k in missing):
            raise ConfigError(f"init='text_tower' needs BERT-style text layers; "
                              f"{type(source).__name__} does not fit (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})", key="init")


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: torch.Tensor,
                mask_id: int, vocab_size: int, probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: each real, non-special token is chosen with ``probability``; a chosen token
    becomes the mask token (80%), a random token (10%) or stays (10%). Returns (masked ids,
    labels), labels -100 where nothing is predicted. Draws from the torch RNG, which the engine
    puts back before a gradient-accumulation re-forward, so both passes mask alike."""
    candidates = attention_mask.bool() & ~torch.isin(input_ids, special_ids.to(input_ids.device))
    chosen = candidates & (torch.rand(input_ids.shape, device=input_ids.device) < probability)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, device=input_ids.device)
    masked = torch.where(chosen & (roll < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    random_ids = torch.randint(vocab_size, input_ids.shape, device=input_ids.device)
    masked = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, masked)
    return masked, labels
