"""Scene images captioned from their class's knowledge entry, with classes held out by choice.

:class:`KnowledgeSceneDataset` is a :class:`~.scene_dataset.SceneFolderDataset` restricted to some
class folders (the unseen-class protocol trains on some classes and evaluates zero-shot on the
others) and split into train / val by file order, whose ``text`` is the list of captions that
:class:`~.knowledge.OSMSceneKnowledge` gives the class (the collate picks one per step).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch

from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import DATASETS, KNOWLEDGE, build

from .scene_dataset import SceneFolderDataset

SPLITS = ("all", "train", "val")


@DATASETS.register_module()
class KnowledgeSceneDataset(SceneFolderDataset):
    """Folder-per-class scenes of chosen classes, captioned from scene knowledge.

    Args:
        root: folder holding one sub-folder per class.
        classes: the class folders to keep, in label order (default: all).
        split: "all", or "train" / "val": in each class, every ``val_every``-th file in name
            order (the last of each run of ``val_every``) is val, the rest train.
        knowledge: an OSMSceneKnowledge or its config (default: knowledge captions).
        language: caption language.
        augment: random rotation by a multiple of 90 degrees and a random flip, drawn from the
            item's seed (a scene seen from above has no up).
        kwargs: the rest of :class:`SceneFolderDataset` (image_size, bands, normalize, ...).
    """

    def __init__(self, root: str | os.PathLike, classes: Sequence[str] | None = None,
                 split: str = "all", val_every: int = 5, knowledge: Mapping[str, Any] | Any = None,
                 language: str = "en", augment: bool = False, **kwargs: Any):
        super().__init__(root, **kwargs)
        if split not in SPLITS:
            raise ConfigError(f"must be one of {SPLITS}, got {split!r}", key="split")
        if val_every < 2:
            raise ConfigError(f"must be at least 2, got {val_every}", key="val_every")
        wanted = list(classes) if classes is not None else list(self.folders)
        missing = sorted(set(wanted) - set(self.folders))
        if missing:
            raise ConfigError(f"KnowledgeSceneDataset: no class folder for {missing} in {self.root}")
        names = dict(zip(self.folders, self.classes))
        by_folder: dict[str, list] = {folder: [] for folder in wanted}
        for path, label in self.items:
            if self.folders[label] in by_folder:
                by_folder[self.folders[label]].append(path)
        self.items = []
        for label, folder in enumerate(wanted):
            for order, path in enumerate(by_folder[folder]):  # already in name order
                part = "val" if order % val_every == val_every - 1 else "train"
                if split in ("all", part):
                    self.items.append((path, label))
        if not self.items:
            raise ConfigError(f"KnowledgeSceneDataset: no {split} images for {wanted} in {self.root}")
        self.folders, self.classes = wanted, [names[f] for f in wanted]
        if knowledge is None or isinstance(knowledge, Mapping):
            knowledge = build(KNOWLEDGE, dict(knowledge or {"type": "OSMSceneKnowledge"}),
                              where="knowledge")
        self.knowledge, self.augment = knowledge, augment
        try:
            self._texts = {name: knowledge.sample_texts(name, language) for name in self.classes}
        except KeyError as err:
            raise ConfigError(f"KnowledgeSceneDataset: {err.args[0]}") from None

    def load(self, index: int) -> dict[str, Any]:
        sample = super().load(index)
        sample["text"] = list(self._texts[sample["meta"]["class"]])
        if self.augment:
            draw = self.sample_seed(index)
            image = torch.rot90(sample["image"], draw % 4, dims=(1, 2))
            sample["image"] = image.flip(-1) if (draw >> 2) & 1 else image
        return sample
