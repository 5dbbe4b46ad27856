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
                 augment: bool = False, on_error: str = "raise"):
        """`augment`: a random horizontal flip and brightness jitter per item and epoch, drawn
        from `sample_seed` (the augmentation the engine's exact-resume test needs)."""
        super().__init__(on_error=on_error, seed=seed)
        self.size, self.image_size, self.channels = size, image_size, channels
        self.augment = augment
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
        if self.augment:
            draw = torch.Generator().manual_seed(self.sample_seed(index))
            if torch.rand((), generator=draw) < 0.5:
                image = image.flip(-1)
            image = image * (0.8 + 0.4 * torch.rand((), generator=draw))
        labels = torch.zeros(len(self.classes))
        labels[label] = 1.0
        name = self.classes[label]
        return {
            "image": image.float(),
            "text": [f"a {name} picture", f"an image that is mostly {name}"],
            "labels": labels,
            "meta": {"source": f"synthetic:{index}"},
        }


@DATASETS.register_module()
class SyntheticSegmentation(SampleDataset):
    """Noisy images with bright squares to segment (class 1 inside, 0 outside), from (seed, index).

    Learnable in a few steps (a falling loss means the head and engine work) and file-free. Items
    come in groups of `group_size` (like a patient's images) for label-fraction draws; `ignore_border`
    marks a frame of that many pixels -1 (unlabelled), as real masks leave edges unlabelled.
    """

    seg_classes = ["background", "square"]

    def __init__(self, size: int = 64, image_size: int = 32, group_size: int = 4, ignore_border: int = 0,
                 seed: int = 0, on_error: str = "raise"):
        super().__init__(on_error=on_error, seed=seed)
        self.size, self.image_size, self.group_size = size, image_size, group_size
        self.ignore_border = ignore_border

    def __len__(self) -> int:
        return self.size

    def group_of(self, index: int) -> str:
        return f"group{index // self.group_size}"

    def load(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        n = self.image_size
        side = int(torch.randint(n // 4, n // 2 + 1, (1,), generator=generator))
        top, left = (int(v) for v in torch.randint(0, n - side + 1, (2,), generator=generator))
        seg = torch.zeros(n, n, dtype=torch.int64)
        seg[top : top + side, left : left + side] = 1
        image = 0.3 * torch.rand(3, n, n, generator=generator) + 0.6 * seg.float()
        if self.ignore_border:
            b = self.ignore_border
            seg[:b], seg[-b:], seg[:, :b], seg[:, -b:] = -1, -1, -1, -1
        return {"image": image.float(), "seg": seg, "text": "a bright square",
                "meta": {"source": f"synthetic-seg:{index}", "group": self.group_of(index)}}


@DATASETS.register_module()
class SyntheticBoxes(SampleDataset):
    """Coloured rectangles on noise, each a box whose text query names its colour (and a `seg`
    map: 0 background, 1 + colour index; a later rectangle covers an earlier one).

    The grounding counterpart of SyntheticImageText: learnable, file-free, generated from
    (seed, index), for engine tests of box heads. `queries` are the texts to find.
    """

    def __init__(self, size: int = 64, image_size: int = 64, max_boxes: int = 2, seed: int = 0,
                 colours: tuple[str, ...] = ("red", "green", "blue"), on_error: str = "raise"):
        super().__init__(on_error=on_error, seed=seed)
        self.size, self.image_size, self.max_boxes = size, image_size, max_boxes
        self.colours = list(colours)
        self.queries = [f"a {name} square" for name in self.colours]
        self.seg_classes = ["background", *self.colours]

    def __len__(self) -> int:
        return self.size

    def load(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        side = self.image_size
        image = 0.3 * torch.rand(3, side, side, generator=generator)
        count = 1 + int(torch.randint(self.max_boxes, (1,), generator=generator))
        boxes, labels = [], []
        seg = torch.zeros(side, side, dtype=torch.int64)
        for _ in range(count):
            w, h = (torch.randint(side // 6, side // 2, (2,), generator=generator)).tolist()
            x0 = int(torch.randint(0, side - w, (1,), generator=generator))
            y0 = int(torch.randint(0, side - h, (1,), generator=generator))
            label = int(torch.randint(len(self.colours), (1,), generator=generator))
            image[:, y0 : y0 + h, x0 : x0 + w] = torch.tensor(COLOURS[self.colours[label]]).view(3, 1, 1)
            seg[y0 : y0 + h, x0 : x0 + w] = label + 1
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(label)
        return {"image": image, "boxes": torch.tensor(boxes, dtype=torch.float32),
                "box_labels": torch.tensor(labels, dtype=torch.int64), "seg": seg,
                "meta": {"source": f"synthetic-boxes:{index}"}}
