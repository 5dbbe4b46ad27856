"""A small text transformer trained from scratch, with a BPE tokenizer learned from the corpus.

For users with no local language model: the tokenizer is trained once with `tokenizers` on the
texts the user names and saved next to the run, so evaluation re-uses exactly the same vocabulary.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import TOWERS
from .base import Tower, TowerOutput

SPECIALS = ["[PAD]", "[UNK]", "[CLS]"]


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, path: str):
    """Train a byte-level BPE tokenizer on `texts`, save it to `path` (JSON) and return it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=2)
    tokenizer.train_from_iterator((t.lower() for t in texts), trainer=trainer)
    cls_id = tokenizer.token_to_id("[CLS]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A", special_tokens=[("[CLS]", cls_id)]
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tokenizer.save(path)
    return tokenizer


def read_corpus(files: Sequence[str]) -> Iterable[str]:
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as handle:
            yield from (line.strip() for line in handle if line.strip())


@TOWERS.register_module()
class ScratchTextTower(Tower):
    modality = "text"

    def __init__(
        self,
        tokenizer_file: str,
        corpus_files: Sequence[str] = (),
        vocab_size: int = 8000,
        width: int = 256,
        depth: int = 4,
        heads: int = 4,
        max_length: int = 77,
    ):
        super().__init__()
        from tokenizers import Tokenizer

        if os.path.isfile(tokenizer_file):
            self.tokenizer = Tokenizer.from_file(tokenizer_file)
        elif corpus_files:
            self.tokenizer = train_bpe_tokenizer(read_corpus(corpus_files), vocab_size, tokenizer_file)
        else:
            raise ConfigError(
                f"ScratchTextTower: tokenizer_file '{tokenizer_file}' does not exist and no "
                "corpus_files were given to train one"
            )
        self.tokenizer_file = tokenizer_file
        self.max_length = max_length
        self.pad_id = self.tokenizer.token_to_id("[PAD]")
        self.unk_token_id = self.tokenizer.token_to_id("[UNK]")  # core/text_coverage.py counts it
        self.width = width
        self.embed = nn.Embedding(self.tokenizer.get_vocab_size(), width)
        self.pos = nn.Parameter(torch.zeros(max_length, width))
        nn.init.normal_(self.pos, std=0.01)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self._checkpointing = False

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encodings = self.tokenizer.encode_batch([t.lower() for t in texts])
        ids = [e.ids[: self.max_length] for e in encodings]
        length = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), length), self.pad_id, dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": (input_ids != self.pad_id).long()}

    def forward(self, batch: dict, mask_ratio: float = 0.0) -> TowerOutput:
        text = batch["text_input"]
        ids, mask = text["input_ids"], text["attention_mask"].bool()
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        for layer in self.encoder.layers:
            if self._checkpointing and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(
                    layer, x, None, ~mask, use_reentrant=False
                )
            else:
                x = layer(x, src_key_padding_mask=~mask)
        tokens = self.norm(x)
        pooled = tokens[:, 0]  # the [CLS] position sees the whole caption
        return TowerOutput(pooled, tokens, mask)

    def blocks(self):
        return list(self.encoder.layers)

    def final_norm(self):
        return self.norm

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        self._checkpointing = enabled
