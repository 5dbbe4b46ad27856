"""SegmentationEvaluator: per-class Dice, IoU and HD95 of `model.predict` on a dataset with `seg`.

Metric names (prefixed with `name`): `dice/<class>`, `iou/<class>`, `hd95/<class>` (means over
images, see seg_metrics.py for the empty-mask convention), `mdice`, `miou`, `mhd95` (means over
the counted classes: all, or all but class 0 with include_background=False), `iou_pooled/<class>`
and `miou_pooled` (one confusion matrix over the dataset), `n`. An undefined value is `null`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from ..collate import move_to
from ..errors import ConfigError
from ..registry import DATASETS, EVALUATORS, build
from . import seg_metrics, seg_plots
from .encode import iterate


def nanmean(values: torch.Tensor) -> float | None:
    """Mean of the defined values; None when there are none."""
    defined = values[~torch.isnan(values)]
    return float(defined.double().mean()) if defined.numel() else None


@EVALUATORS.register_module()
class SegmentationEvaluator:
    def __init__(self, dataset: Any, include_background: bool = True, hd95: bool = True,
                 batch_size: int = 8, num_workers: int = 0, overlays: int = 4, name: str = "seg"):
        self.dataset = dataset if not isinstance(dataset, dict) else build(
            DATASETS, dataset, where="eval.dataset")
        self.classes = list(getattr(self.dataset, "seg_classes", None) or [])
        if len(self.classes) < 2:
            raise ConfigError(f"SegmentationEvaluator: dataset {type(self.dataset).__name__} names "
                              "no seg_classes (at least 2, e.g. background and the structure)")
        self.include_background, self.hd95 = include_background, hd95
        self.batch_size, self.num_workers = batch_size, num_workers
        self.overlays, self.name = overlays, name

    def __call__(self, model, device, out_dir: Path) -> dict[str, float | int | None]:
        k = len(self.classes)
        per_image: dict[str, list[torch.Tensor]] = {}
        matrix = torch.zeros(k, k, dtype=torch.long)
        shown = []
        for batch in iterate(self.dataset, self.batch_size, self.num_workers):
            if not batch["size"]:
                continue
            if "seg" not in batch:
                raise ConfigError(f"{self.name}: the dataset gives no 'seg' to score against")
            pred = model.predict(move_to(batch, device))["seg"].cpu()
            truth = batch["seg"]
            scores = seg_metrics.per_image_scores(pred, truth, k, self.hd95, self.spacings(batch))
            for metric, values in scores.items():
                per_image.setdefault(metric, []).append(values.cpu())
            matrix += seg_metrics.confusion(pred, truth, k)
            for i in range(min(len(pred), self.overlays - len(shown))):
                if "image" in batch:
                    shown.append((batch["image"][i], truth[i], pred[i]))
        if not per_image:
            raise ConfigError(f"{self.name}: the evaluation dataset is empty")
        return self.summarise({m: torch.cat(v) for m, v in per_image.items()}, matrix, shown, out_dir)

    def spacings(self, batch: dict) -> list[list[float]] | None:
        """Each image's meta["spacing"] (array-axis order) when all have one of the right length."""
        dims = batch["seg"].ndim - 1
        spacings = [m.get("spacing") for m in batch.get("meta", [])]
        if spacings and all(isinstance(s, (list, tuple)) and len(s) == dims for s in spacings):
            return [[float(v) for v in s] for s in spacings]
        return None

    def summarise(self, scores: dict[str, torch.Tensor], matrix: torch.Tensor, shown,
                  out_dir: Path) -> dict[str, float | int | None]:
        n = self.name
        counted = range(0 if self.include_background else 1, len(self.classes))
        result: dict[str, float | int | None] = {f"{n}/n": int(scores["dice"].shape[0])}
        per_class: dict[str, list[float | None]] = {}
        for metric, values in scores.items():
            per_class[metric] = [nanmean(values[:, c]) for c in range(len(self.classes))]
            for name, value in zip(self.classes, per_class[metric]):
                result[f"{n}/{metric}/{name}"] = value
            result[f"{n}/m{metric}"] = nanmean(torch.tensor(
                [math.nan if per_class[metric][c] is None else per_class[metric][c] for c in counted]))
        pooled = seg_metrics.pooled_iou(matrix)
        for name, value in zip(self.classes, pooled.tolist()):
            result[f"{n}/iou_pooled/{name}"] = None if math.isnan(value) else value
        result[f"{n}/miou_pooled"] = nanmean(pooled[list(counted)])
        seg_plots.plot_class_scores(per_class["dice"], per_class["iou"], self.classes,
                                    out_dir / f"{n}_class_scores.png")
        if shown:
            seg_plots.plot_overlays(shown, self.classes, out_dir / f"{n}_overlays.png")
        return result
