"""Zero-shot localisation: where does the model think a text is, before any fine-tuning?

For every image and every target class present in its `seg` map, the MaskCLIP similarity map of
the class prompt (core/heads/maskclip.py) is scored three ways against the true region:
- pointing game: the map's maximum falls inside the region;
- mask IoU: the map thresholded at the midpoint of its own range (no threshold learnt from labels)
  against the region;
- box Acc@0.5: the bounding box of the thresholded map's largest connected component against the
  region's bounding box.
The same three are reported for a trivial centre prior — the image centre as the point, and a
centred box with the mean true-box size of the dataset (an oracle size, so a strong baseline) as
mask and box — so a number can be read as better or worse than knowing nothing about the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from scipy import ndimage
from torchvision.ops import box_iou

from ..collate import move_to
from ..errors import ConfigError
from ..heads.maskclip import similarity_maps
from ..registry import DATASETS, EVALUATORS, KNOWLEDGE, build
from ..text_coverage import MAX_UNKNOWN_TOKEN_SHARE, check_language_coverage
from .encode import iterate, prompt_ensemble
from .evaluators import class_prompts


def mask_box(region: np.ndarray) -> list[float] | None:
    """xyxy pixel box around the True pixels, or None when there are none."""
    ys, xs = np.nonzero(region)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def largest_component(region: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(region)
    if count <= 1:
        return region
    sizes = ndimage.sum(region, labelled, index=range(1, count + 1))
    return labelled == (1 + int(np.argmax(sizes)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def centre_box(height: int, width: int, box_h: float, box_w: float) -> list[float]:
    cy, cx = height / 2, width / 2
    return [cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2]


def box_mask(box: Sequence[float], height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask


def box_hit(a: Sequence[float] | None, b: Sequence[float]) -> int:
    if a is None:
        return 0
    return int(box_iou(torch.tensor([a]), torch.tensor([b]))[0, 0] >= 0.5)


@EVALUATORS.register_module()
class ZeroShotLocalization:
    """`dataset` gives `image` and `seg` (class indices into its `seg_classes`); `classes` names
    the classes to localise (default: every class but index 0, the background)."""

    def __init__(self, dataset: Any, classes: Sequence[str] | None = None, knowledge: Any = None,
                 templates: Sequence[str] | None = None, language: str = "en", batch_size: int = 16,
                 name: str = "localize", examples: int = 4,
                 max_unknown_token_share: float = MAX_UNKNOWN_TOKEN_SHARE):
        self.dataset = dataset if not isinstance(dataset, dict) else build(DATASETS, dataset, where="eval.dataset")
        names = list(getattr(self.dataset, "seg_classes", None) or [])
        if not names:
            raise ConfigError(f"{name}: dataset {type(self.dataset).__name__} has no `seg_classes`")
        self.classes = list(classes) if classes else names[1:]
        unknown = sorted(set(self.classes) - set(names))
        if unknown:
            raise ConfigError(f"{name}: classes {unknown} are not in the dataset's seg_classes {names}")
        self.class_index = {c: names.index(c) for c in self.classes}
        self.knowledge = build(KNOWLEDGE, knowledge, where="eval.knowledge") if isinstance(knowledge, dict) else knowledge
        self.templates, self.language = templates, language
        self.batch_size, self.name, self.examples = batch_size, name, examples
        self.max_unknown_token_share = max_unknown_token_share

    def __call__(self, model, device, out_dir: Path) -> dict[str, float]:
        model.eval()
        prompts = class_prompts(self.knowledge, self.classes, self.templates, self.language)
        # prompts the text tower cannot read would localise nothing (core/text_coverage.py)
        check_language_coverage(model, [p for ps in prompts.values() for p in ps], self.language,
                                self.max_unknown_token_share, what=f"{self.name} prompts")
        text = prompt_ensemble(model, prompts, self.classes, device).to(device)
        cases = []  # (class, similarity map, true region) per image and present class
        for batch in iterate(self.dataset, self.batch_size):
            if not batch["size"]:
                continue
            if "seg" not in batch:
                raise ConfigError(f"{self.name}: the dataset gives no 'seg' maps to score against")
            maps = similarity_maps(model, move_to(batch, device)["image"], text).float().cpu().numpy()
            for b, seg in enumerate(batch["seg"].numpy()):
                for k, cls in enumerate(self.classes):
                    region = seg == self.class_index[cls]
                    if region.any():
                        cases.append((cls, maps[b, k], region))
        if not cases:
            raise ConfigError(f"{self.name}: no image contains any of {self.classes}")
        results = self.score(cases)
        from .plots import plot_similarity_maps

        plot_similarity_maps(cases[: self.examples], Path(out_dir) / f"{self.name}_maps.png")
        return {f"{self.name}/{k}": v for k, v in results.items()}

    @staticmethod
    def score(cases) -> dict[str, float]:
        sizes = [(b[3] - b[1], b[2] - b[0]) for b in (mask_box(r) for _, _, r in cases)]
        mean_h, mean_w = float(np.mean([s[0] for s in sizes])), float(np.mean([s[1] for s in sizes]))
        found = {k: [] for k in ("pointing", "mask_iou", "box_acc@0.5",
                                 "centre_pointing", "centre_mask_iou", "centre_box_acc@0.5")}
        for _, sim, region in cases:
            height, width = region.shape
            truth_box = mask_box(region)
            peak = np.unravel_index(int(np.argmax(sim)), sim.shape)
            found["pointing"].append(float(region[peak]))
            predicted = sim > (sim.min() + sim.max()) / 2
            found["mask_iou"].append(iou(predicted, region))
            found["box_acc@0.5"].append(box_hit(mask_box(largest_component(predicted)), truth_box))
            found["centre_pointing"].append(float(region[height // 2, width // 2]))
            centre = centre_box(height, width, mean_h, mean_w)
            found["centre_mask_iou"].append(iou(box_mask(centre, height, width), region))
            found["centre_box_acc@0.5"].append(box_hit(centre, truth_box))
        results = {k: float(np.mean(v)) for k, v in found.items()}
        results["cases"] = len(cases)
        return results
