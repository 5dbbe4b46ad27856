"""Box grounding evaluation: a GroundingModel's boxes for the dataset's text queries against the
true boxes (mAP, AP50, Acc@0.5), with a picture of predicted and true boxes per example image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..collate import Collator, move_to
from ..errors import ConfigError
from ..registry import DATASETS, EVALUATORS, build
from .detection_metrics import detection_ap, grounding_accuracy
from .plots import plot_boxes


@EVALUATORS.register_module()
class BoxGrounding:
    """The dataset gives `image`, `boxes` (xyxy pixels), `box_labels` (indices into its
    `queries`, the texts to find)."""

    def __init__(self, dataset: Any, batch_size: int = 16, num_workers: int = 0, top_k: int = 100,
                 name: str = "grounding", examples: int = 4):
        self.dataset = dataset if not isinstance(dataset, dict) else build(DATASETS, dataset, where="eval.dataset")
        self.queries = list(getattr(self.dataset, "queries", None) or [])
        if not self.queries:
            raise ConfigError(f"{name}: dataset {type(self.dataset).__name__} defines no `queries` to ground")
        self.batch_size, self.num_workers, self.top_k = batch_size, num_workers, top_k
        self.name, self.examples = name, examples

    @torch.no_grad()
    def predict_all(self, model, device) -> tuple[list, list, list]:
        loader = DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False,
                            num_workers=self.num_workers,
                            collate_fn=Collator(model.tokenize, facet="first", queries=self.queries))
        predictions, targets, images = [], [], []
        for batch in loader:
            if not batch["size"]:
                continue
            found = model.predict(move_to(batch, device), top_k=self.top_k)["detections"]
            predictions += [{k: v.cpu() for k, v in p.items()} for p in found]
            targets += [{"boxes": torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4),
                         "labels": torch.as_tensor(l, dtype=torch.int64).reshape(-1)}
                        for b, l in zip(batch["boxes"], batch["box_labels"])]
            if len(images) < self.examples:
                images += list(batch["image"][: self.examples - len(images)].cpu())
        return predictions, targets, images

    def __call__(self, model, device, out_dir: Path) -> dict[str, float]:
        if not hasattr(model, "predict"):
            raise ConfigError(f"{self.name}: {type(model).__name__} predicts no boxes (use GroundingModel)")
        model.eval()
        predictions, targets, images = self.predict_all(model, device)
        results = {f"{self.name}/{k}": v for k, v in detection_ap(predictions, targets).items()}
        results[f"{self.name}/acc@0.5"] = grounding_accuracy(predictions, targets, 0.5)
        plot_boxes(images, predictions[: len(images)], targets[: len(images)], self.queries,
                   Path(out_dir) / f"{self.name}_boxes.png")
        return results
