"""Fixed train/validation splits that need no split file.

An item belongs to the validation split when a hash of (``seed``, its group) falls under the
validation fraction. The group is what must not straddle the split: a patient, a map tile, an
area, a shape file. The hash is salt-free and independent of file order, machine and Python's
``hash`` randomisation, so every run and every worker sees the same split, and a new item never
moves an old one to the other side.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, TypeVar

from .errors import ConfigError

SPLITS = ("all", "train", "val")

Item = TypeVar("Item")


def in_validation(group: str, fraction: float, seed: int = 0) -> bool:
    """Whether ``group`` is in the validation split of size ``fraction`` (0..1)."""
    digest = hashlib.blake2b(f"{seed}:{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}", key="split")
    return split


def select_split(items: Iterable[Item], group_of: Callable[[Item], str], split: str,
                 fraction: float, seed: int = 0) -> list[Item]:
    """The items of ``split`` ("all", "train" or "val"), in their order."""
    if check_split(split) == "all":
        return list(items)
    want_val = split == "val"
    return [item for item in items if in_validation(group_of(item), fraction, seed) == want_val]
