"""LabelFraction: train on a seeded share of a dataset's groups (label-efficient fine-tuning).

Groups are what must not be split between "labelled" and "unlabelled": a patient's images, a
scene's tiles. The wrapped dataset names them with `group_of(index)`; without it every item is
its own group. The draw is one seeded permutation of the sorted group ids, of which the first
`round(fraction * groups)` (at least one) are kept, so with one seed a smaller fraction's groups
are a subset of a larger one's (1 % inside 10 % inside 100 %).
"""

from __future__ import annotations

import math
import random
from typing import Any, Mapping

from torch.utils.data import Dataset

from .errors import ConfigError
from .registry import DATASETS, build


@DATASETS.register_module()
class LabelFraction(Dataset):
    def __init__(self, dataset: Mapping[str, Any] | Dataset, fraction: float, seed: int = 0):
        if not 0.0 < float(fraction) <= 1.0:
            raise ConfigError(f"LabelFraction.fraction must be in (0, 1], got {fraction}")
        self.dataset = build(DATASETS, dataset, where="LabelFraction.dataset") \
            if isinstance(dataset, Mapping) else dataset
        self.fraction, self.draw_seed = float(fraction), int(seed)
        group_of = getattr(self.dataset, "group_of", None)
        groups = [group_of(i) if group_of else i for i in range(len(self.dataset))]
        ordered = sorted(set(groups), key=str)
        random.Random(self.draw_seed).shuffle(ordered)
        kept = set(ordered[: max(1, math.floor(self.fraction * len(ordered) + 0.5))])
        self.indices = [i for i, group in enumerate(groups) if group in kept]
        self.groups = sorted(kept, key=str)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[self.indices[index]]

    def group_of(self, index: int):
        group_of = getattr(self.dataset, "group_of", None)
        return group_of(self.indices[index]) if group_of else self.indices[index]

    # The engine sets `seed` and calls `set_epoch` on its dataset: they belong to the wrapped one
    # (its augmentation stream); the draw keeps its own `draw_seed`.
    @property
    def seed(self) -> int:
        return self.dataset.seed

    @seed.setter
    def seed(self, value: int) -> None:
        self.dataset.seed = value

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getattr__(self, name: str):
        # class lists and vocabularies (seg_classes, classes, queries) are the wrapped dataset's
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
