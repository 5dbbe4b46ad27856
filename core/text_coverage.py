"""Does the text tower read this language? The share of tokens it cannot read.

An English WordPiece vocabulary (the default MiniLM-L6) turns most Chinese characters into
``[UNK]``, and spells Arabic words out letter by letter (its vocabulary holds the Arabic letters
but no Arabic word pieces): the model then sees unknowns or loose letters, and zero-shot scores or
training on such texts measure nothing. Zero-shot evaluation and training with a non-English
language measure the share first and refuse above a threshold (``max_unknown_token_share``).

The share is over every non-padding token the tower's own tokenizer gives (``[CLS]``/``[SEP]``
included, after its truncation), i.e. exactly the ids the tower would embed. A token counts as
unread when it is the unknown token, or one letter of a word of three or more characters that the
tokenizer could only spell out one character per token (measured where the tokenizer reports
word boundaries: Hugging Face fast tokenizers). Chinese characters are words of one character in
BERT-style tokenizers, so they are judged by ``[UNK]`` alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from .errors import ConfigError

#: the default threshold: above this share of unread tokens a language is refused
MAX_UNKNOWN_TOKEN_SHARE = 0.05
#: a word is "spelled out" when it has at least this many characters, one token each
SPELLED_WORD_MIN_CHARS = 3

MULTILINGUAL_HINT = (
    "point the config at a multilingual text tower in a local directory, e.g. "
    "model.towers.text = dict(type='HFTextTower', path='/models/paraphrase-multilingual-MiniLM-L12-v2') "
    "(any transformers model directory; docs/remote_sensing.md, 'Languages and text towers', says "
    "which tower each language needs), or raise max_unknown_token_share to accept it"
)


@dataclass(frozen=True)
class Coverage:
    tokens: int  # non-padding tokens
    unknown: int  # tokens that are the unknown token
    spelled: int  # tokens that are single letters of a spelled-out word

    @property
    def unknown_share(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0

    @property
    def unread_share(self) -> float:
        return (self.unknown + self.spelled) / self.tokens if self.tokens else 0.0


def text_coverage(tower, texts: Sequence[str]) -> Coverage:
    """How many of the tokens ``tower`` makes of ``texts`` it cannot read (see the module doc)."""
    texts = list(texts)
    unk = getattr(tower, "unk_token_id", None)
    if not texts:
        return Coverage(0, 0, 0)
    encoded = tower.tokenize(texts)
    real = encoded["attention_mask"].bool()
    unknown = int(((encoded["input_ids"] == unk) & real).sum()) if unk is not None else 0
    return Coverage(int(real.sum()), unknown, spelled_out_tokens(tower, texts))


def spelled_out_tokens(tower, texts: list[str]) -> int:
    """Tokens that are single characters of words of SPELLED_WORD_MIN_CHARS or more characters
    split one character per token; 0 where the tokenizer reports no word boundaries."""
    tokenizer = getattr(getattr(tower, "tower", tower), "tokenizer", None)  # FrozenTextCache wraps
    if not getattr(tokenizer, "is_fast", False):
        return 0
    # a piece's own characters: without WordPiece's "##" or SentencePiece's word-start mark
    prefix = getattr(tokenizer.backend_tokenizer.model, "continuing_subword_prefix", None) or "##"
    encoded = tokenizer(texts, truncation=True, max_length=getattr(tower, "max_length", None))
    spelled = 0
    for row in range(len(texts)):
        pieces = defaultdict(list)  # word index -> character count of each of its tokens
        for word, token in zip(encoded.word_ids(row), encoded.tokens(row)):
            if word is not None:
                pieces[word].append(len(token.removeprefix(prefix).removeprefix("\u2581")))
        spelled += sum(len(p) for p in pieces.values()
                       if len(p) >= SPELLED_WORD_MIN_CHARS and all(n == 1 for n in p))
    return spelled


def check_language_coverage(model, texts: Sequence[str], language: str,
                            max_share: float = MAX_UNKNOWN_TOKEN_SHARE, what: str = "texts") -> float:
    """The unread share of ``texts`` (in ``language``) for ``model``'s text tower; a ConfigError
    naming the language, the share and the fix when it is above ``max_share``. English is not
    checked."""
    towers = getattr(model, "towers", {})
    if language == "en" or "text" not in towers:
        return 0.0
    cover = text_coverage(towers["text"], texts)
    if cover.unread_share > max_share:
        raise ConfigError(
            f"language {language!r}: {cover.unread_share:.0%} of the {cover.tokens} tokens the text tower "
            f"makes of the {what} are unread ({cover.unknown} unknown [UNK], {cover.spelled} letters of "
            f"spelled-out words), above max_unknown_token_share={max_share:g}: this text tower does not "
            f"read {language}; {MULTILINGUAL_HINT}", key="max_unknown_token_share")
    return cover.unread_share
