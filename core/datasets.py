"""Domain-agnostic datasets: generated image-text pairs for engine tests and GPU benchmarks."""

from __future__ import annotations

import torch

from .data import SampleDataset
from .registry import DATASETS

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.9, 0.2), "blue": (0.1, 0.2, 1.0),
           "yellow": (1.0, 0.9, 0.1), "purple": (0.6, 0.1, 0.8), "grey": (0.5, 0.5, 0.5)}


@DATASETS.register_module()
class SyntheticImageText(SampleDataset):
    """Images whose dominant colour is named by their caption, generated from (seed, index).

    Learnable (so a loss curve means something) and file-free (so the engine can be measured
    and tested without any reader in the way). Not a substitute for real data in evaluation.

    ``seed`` chooses the images, so it names the data set: train and eval data differ by their
    seeds. The engine may set the run's seed on ``self.seed`` (the augmentation seed of every
    dataset); the images stay those of the seed given here.
    """

    def __init__(self, size: int = 256, image_size: int = 224, channels: int = 3, seed: int = 0,
                 on_error: str = "raise"):
        super().__init__(on_error=on_error, seed=seed)
        self.size, self.image_size, self.channels = size, image_size, channels
        self.data_seed = seed
        self.classes = list(COLOURS)

    def __len__(self) -> int:
        return self.size

    def load(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(self.data_seed * 1_000_003 + index)
        label = index % len(self.classes)
        colour = torch.tensor(COLOURS[self.classes[label]][: self.channels])
        noise = torch.rand(self.channels, self.image_size, self.image_size, generator=generator)
        image = 0.6 * colour.view(-1, 1, 1) + 0.4 * noise
        labels = torch.zeros(len(self.classes))
        labels[label] = 1.0
        name = self.classes[label]
        return {
            "image": image.float(),
            "text": [f"a {name} picture", f"an image that is mostly {name}"],
            "labels": labels,
            "meta": {"source": f"synthetic:{index}"},
        }
