"""Zero-shot evaluators for point clouds.

- :class:`MultiViewZeroShot`: classify clouds with an image-text model through rendered depth
  views (rendering.py), PointCLIP V2-like.
- :class:`PointOpenVocabSegmentation`: open-vocabulary per-point labels from a point-text model
  (ULIP-style pre-training), no head.

Open vocabulary: each group token of the point tower (the features ``forward`` pools) goes through the model's
``points`` projection, is L2-normalised and compared with every class's prompt-ensemble text
embedding; the (groups x classes) similarities are interpolated onto every input point with the
same 3-NN inverse-distance weights as the feature-propagation head, and a point's label is its
most similar class. Classes are whatever text the prompts say, so any class list works without
training (MaskCLIP's dense text similarity, for points).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from facetvlp.core.collate import move_to
from facetvlp.core.errors import ConfigError
from facetvlp.core.eval import metrics, plots, seg_metrics
from facetvlp.core.eval.encode import iterate, prompt_ensemble
from facetvlp.core.eval.evaluators import build_part, class_prompts, classified_dataset
from facetvlp.core.registry import DATASETS, EVALUATORS, KNOWLEDGE

from .rendering import render_views
from .seg_head import interpolate_features


@torch.no_grad()
def open_vocab_point_logits(model, batch: dict, class_embeds: torch.Tensor) -> torch.Tensor:
    """(B, K, N) cosine similarities of every point to the K class embeddings (K, D)."""
    tower = model.towers["points"]
    tokens = tower.forward_point_tokens(batch)
    projected = F.normalize(model.projections["points"](tokens.feats), dim=-1)
    group_scores = projected @ class_embeds.to(projected.dtype).T  # (B, G, K)
    points = batch["points"][..., :3].contiguous()
    return interpolate_features(points, tokens.xyz, group_scores).transpose(1, 2)


@EVALUATORS.register_module()
class PointOpenVocabSegmentation:
    """Zero-shot per-point segmentation scored against ``seg`` (per-class and mean IoU over one
    confusion matrix of the whole dataset, points with ``seg == -1`` left out).

    prompts: ``{class: [texts]}`` to use as they are; otherwise ``knowledge`` (e.g.
    ``dict(type="ShapeKnowledge", kind="lidar")``) or plain templates build them from the
    dataset's ``seg_classes``.
    """

    def __init__(self, dataset: Any, knowledge: Any = None, prompts: Mapping[str, Sequence[str]] | None = None,
                 templates: Sequence[str] | None = None, language: str = "en", batch_size: int = 8,
                 name: str = "openvocab"):
        self.dataset = build_part(DATASETS, dataset, "eval.dataset")
        self.classes = list(getattr(self.dataset, "seg_classes", []) or [])
        if len(self.classes) < 2:
            raise ConfigError(f"{name}: dataset {type(self.dataset).__name__} names no seg_classes")
        self.knowledge = build_part(KNOWLEDGE, knowledge, "eval.knowledge") if knowledge else None
        self.prompts = {k: list(v) for k, v in prompts.items()} if prompts else None
        if self.prompts is not None and set(self.prompts) != set(self.classes):
            raise ConfigError(f"{name}: prompts name {sorted(self.prompts)}, the dataset {self.classes}")
        self.templates, self.language, self.batch_size, self.name = templates, language, batch_size, name

    def __call__(self, model, device, out_dir: Path) -> dict[str, float | int | None]:
        prompts = self.prompts or class_prompts(self.knowledge, self.classes, self.templates, self.language)
        class_embeds = prompt_ensemble(model, prompts, self.classes, device)
        k = len(self.classes)
        matrix = torch.zeros(k, k, dtype=torch.long)
        count = 0
        for batch in iterate(self.dataset, self.batch_size):
            if not batch["size"]:
                continue
            logits = open_vocab_point_logits(model, move_to(batch, device), class_embeds.to(device))
            matrix += seg_metrics.confusion(logits.argmax(1).cpu(), batch["seg"], k)
            count += int(batch["size"])
        iou = seg_metrics.pooled_iou(matrix)
        result: dict[str, float | int | None] = {f"{self.name}/n": count}
        for name, value in zip(self.classes, iou.tolist()):
            result[f"{self.name}/iou/{name}"] = None if value != value else value
        defined = iou[~torch.isnan(iou)]
        result[f"{self.name}/miou"] = float(defined.mean()) if defined.numel() else None
        return result


@EVALUATORS.register_module()
class MultiViewZeroShot:
    """Zero-shot point cloud classification with an image-text model: each cloud is rendered
    from several views, the view embeddings are averaged, and the class is the prompt ensemble
    it is most similar to. The model needs an "image" and a "text" tower; no point tower."""

    def __init__(self, dataset: Any, knowledge: Any = None, templates: Sequence[str] | None = None,
                 azimuths: Sequence[float] = (0, 60, 120, 180, 240, 300), elevation: float = 20.0,
                 image_size: int = 224, batch_size: int = 16, language: str = "en",
                 name: str = "multiview"):
        self.dataset, self.knowledge, self.classes = classified_dataset(dataset, knowledge, name)
        self.templates, self.language, self.name = templates, language, name
        self.azimuths, self.elevation = tuple(azimuths), elevation
        self.image_size, self.batch_size = image_size, batch_size

    @torch.no_grad()
    def embed_points(self, model, batch: dict) -> torch.Tensor:
        views = render_views(batch["points"], self.azimuths, self.elevation, self.image_size)
        b, v = views.shape[:2]
        flat = model.encode("image", {"image": views.flatten(0, 1)}).view(b, v, -1)
        return F.normalize(flat.mean(dim=1), dim=-1)

    @torch.no_grad()
    def __call__(self, model, device, out_dir: Path) -> dict[str, float]:
        embeds, labels = [], []
        for batch in iterate(self.dataset, self.batch_size):
            if not batch["size"]:
                continue
            batch = move_to(batch, device)
            embeds.append(self.embed_points(model, batch).float().cpu())
            labels.append(batch["labels"].float().cpu())
        prompts = class_prompts(self.knowledge, self.classes, self.templates, self.language)
        class_embeds = prompt_ensemble(model, prompts, self.classes, device)
        probs = (torch.cat(embeds) @ class_embeds.T).softmax(-1)
        target = torch.cat(labels).argmax(-1)
        pred = probs.argmax(-1)
        cm = metrics.confusion_matrix(pred, target, len(self.classes))
        plots.plot_confusion(cm, self.classes, Path(out_dir) / f"{self.name}_confusion.png")
        return {
            f"{self.name}/top1": metrics.top1(probs, target),
            f"{self.name}/balanced_accuracy": metrics.balanced_accuracy(pred, target,
                                                                        len(self.classes)),
            f"{self.name}/n": int(len(target)),
        }
