"""Phrase -> points: which points of a LiDAR tile does a text prompt mean, and where are they?

No head is trained. A point-text model's group tokens go through its ``points`` projection and are
compared with the prompt's text embedding; the scores are propagated to every point with the
3-NN inverse-distance weights of the feature-propagation head (:func:`.evaluators.open_vocab_point_logits`).
That per-point *relevance* is turned into a selection without any threshold learnt from labels:
the points above the midpoint of the tile's own relevance range (the rule the 2D
``ZeroShotLocalization`` uses on similarity maps). The selection is split into connected clusters
(DBSCAN, open3d) and every cluster gives one axis-aligned 3D box in the file's coordinates.

:class:`PointPhraseGrounding` scores this against per-point ASPRS classes: pooled IoU of the
selection with the class's points, and box recall / precision at a 3D IoU between the clusters'
boxes and the boxes of the class's own clusters. Three selections that know nothing about the prompt are
scored beside it: every point, the points above the tile's mid height, and those below it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from facetvlp.core.collate import move_to
from facetvlp.core.errors import ConfigError
from facetvlp.core.eval.encode import iterate, prompt_ensemble
from facetvlp.core.eval.evaluators import build_part, class_prompts
from facetvlp.core.registry import DATASETS, EVALUATORS, KNOWLEDGE

from .evaluators import open_vocab_point_logits

METHODS = ("model", "all_points", "upper_half", "lower_half")


def select_above_midpoint(values: np.ndarray) -> np.ndarray:
    """True where a value is above the midpoint of the array's own range (nothing when flat)."""
    low, high = float(values.min()), float(values.max())
    return values > (low + high) / 2


def cluster_labels(xyz: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    """DBSCAN cluster index per point (open3d), -1 for noise."""
    import open3d as o3d

    if len(xyz) == 0:
        return np.zeros(0, dtype=np.int64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(xyz, dtype=np.float64)))
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        return np.asarray(cloud.cluster_dbscan(eps=eps, min_points=min_points, print_progress=False))


def cluster_boxes(xyz: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    """(M, 6) axis-aligned boxes ``xmin, ymin, zmin, xmax, ymax, zmax``, one per DBSCAN cluster
    of ``xyz`` (open3d's ``AxisAlignedBoundingBox``), in the units of ``xyz``."""
    import open3d as o3d

    labels = cluster_labels(xyz, eps, min_points)
    boxes = []
    for index in range(int(labels.max()) + 1 if len(labels) else 0):
        members = o3d.utility.Vector3dVector(np.asarray(xyz[labels == index], dtype=np.float64))
        box = o3d.geometry.AxisAlignedBoundingBox.create_from_points(members)
        boxes.append([*box.get_min_bound(), *box.get_max_bound()])
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 6)


def box_iou_3d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, K) volume IoU of axis-aligned boxes ``xmin, ymin, zmin, xmax, ymax, zmax``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 6), np.asarray(b, dtype=np.float64).reshape(-1, 6)
    low = np.maximum(a[:, None, :3], b[None, :, :3])
    high = np.minimum(a[:, None, 3:], b[None, :, 3:])
    inter = np.clip(high - low, 0, None).prod(-1)
    volume_a = (a[:, 3:] - a[:, :3]).prod(-1)
    volume_b = (b[:, 3:] - b[:, :3]).prod(-1)
    union = volume_a[:, None] + volume_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def matched_pairs(predicted: np.ndarray, truth: np.ndarray, threshold: float) -> int:
    """How many one-to-one pairs (Hungarian on IoU) reach ``threshold``."""
    if len(predicted) == 0 or len(truth) == 0:
        return 0
    iou = box_iou_3d(predicted, truth)
    rows, cols = linear_sum_assignment(-iou)
    return int((iou[rows, cols] >= threshold).sum())


class SelectionScore:
    """Pooled IoU of point selections with the true points over a whole dataset, and box recall /
    precision from matched pairs: sums first, ratios at the end."""

    def __init__(self):
        self.intersection = self.union = 0
        self.matched = self.true_boxes = self.predicted_boxes = 0

    def add_points(self, selected: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> None:
        self.intersection += int((selected & truth & valid).sum())
        self.union += int(((selected | truth) & valid).sum())

    def add_boxes(self, predicted: np.ndarray, truth: np.ndarray, threshold: float) -> None:
        self.matched += matched_pairs(predicted, truth, threshold)
        self.true_boxes += len(truth)
        self.predicted_boxes += len(predicted)

    def result(self) -> dict[str, float | None]:
        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        return {"iou": ratio(self.intersection, self.union),
                "box_recall": ratio(self.matched, self.true_boxes),
                "box_precision": ratio(self.matched, self.predicted_boxes)}


@EVALUATORS.register_module()
class PointPhraseGrounding:
    """Phrase -> points -> boxes, scored against ``seg`` (see the module docstring).

    dataset: gives ``points`` (xyz in the first three channels), ``seg`` and ``meta`` with
    ``offset`` / ``scale`` (file xyz = points * scale + offset), e.g. ``LidarTileDataset``.
    classes: which of the dataset's ``seg_classes`` to ground (default all); each is one phrase,
    prompted by ``prompts`` (``{class: [texts]}``), ``knowledge`` or ``templates``.
    cluster_eps / cluster_min_points: DBSCAN in file units; box_iou: the 3D IoU a predicted box
    needs to count as finding a true one. The model's boxes for every tile and phrase go to
    ``{name}_boxes.json`` in file coordinates.
    """

    def __init__(self, dataset: Any, classes: Sequence[str] | None = None, knowledge: Any = None,
                 prompts: Mapping[str, Sequence[str]] | None = None, templates: Sequence[str] | None = None,
                 language: str = "en", cluster_eps: float = 1.5, cluster_min_points: int = 8,
                 box_iou: float = 0.25, batch_size: int = 8, name: str = "phrase_points"):
        self.dataset = build_part(DATASETS, dataset, "eval.dataset")
        names = list(getattr(self.dataset, "seg_classes", []) or [])
        self.classes = list(classes) if classes else names
        unknown = sorted(set(self.classes) - set(names))
        if unknown or not self.classes:
            raise ConfigError(f"{name}: classes {unknown or self.classes} are not in the dataset's "
                              f"seg_classes {names}")
        self.class_index = {c: names.index(c) for c in self.classes}
        self.knowledge = build_part(KNOWLEDGE, knowledge, "eval.knowledge") if knowledge else None
        self.prompts = {k: list(v) for k, v in prompts.items()} if prompts else None
        if self.prompts is not None and not set(self.classes) <= set(self.prompts):
            raise ConfigError(f"{name}: prompts name {sorted(self.prompts)}, need {self.classes}")
        self.templates, self.language = templates, language
        self.eps, self.min_points, self.box_iou = float(cluster_eps), int(cluster_min_points), float(box_iou)
        self.batch_size, self.name = batch_size, name

    def selections(self, relevance: np.ndarray, points: np.ndarray) -> dict[str, np.ndarray]:
        """The model's selection from one phrase's relevance, and the three prompt-blind ones
        (heights from the tile's own normalised xyz)."""
        return {"model": select_above_midpoint(relevance),
                "all_points": np.ones(len(points), dtype=bool),
                "upper_half": select_above_midpoint(points[:, 2]),
                "lower_half": select_above_midpoint(-points[:, 2])}

    def __call__(self, model, device, out_dir: Path) -> dict[str, float | int | None]:
        model.eval()
        prompts = self.prompts or class_prompts(self.knowledge, self.classes, self.templates, self.language)
        text = prompt_ensemble(model, prompts, self.classes, device).to(device)
        scores = {(m, c): SelectionScore() for m in METHODS for c in self.classes}
        written, tiles = [], 0
        for batch in iterate(self.dataset, self.batch_size):
            if not batch["size"]:
                continue
            relevance = open_vocab_point_logits(model, move_to(batch, device), text).float().cpu().numpy()
            for b, meta in enumerate(batch["meta"]):
                tiles += 1
                points = batch["points"][b, :, :3].double().numpy()
                xyz = points * float(meta["scale"]) + np.asarray(meta["offset"], dtype=np.float64)
                seg = batch["seg"][b].numpy()
                valid = seg >= 0
                for k, cls in enumerate(self.classes):
                    truth = seg == self.class_index[cls]
                    true_boxes = cluster_boxes(xyz[truth], self.eps, self.min_points)
                    for method, selected in self.selections(relevance[b, k], points).items():
                        boxes = cluster_boxes(xyz[selected], self.eps, self.min_points)
                        scores[method, cls].add_points(selected, truth, valid)
                        scores[method, cls].add_boxes(boxes, true_boxes, self.box_iou)
                        if method == "model":
                            written.append({"source": meta.get("source"), "phrase": cls,
                                            "selected_points": int(selected.sum()),
                                            "boxes_xyzxyz": np.round(boxes, 3).tolist()})
        if not tiles:
            raise ConfigError(f"{self.name}: the dataset gave no tiles")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / f"{self.name}_boxes.json").write_text(json.dumps(written, indent=1))
        return self.summary(scores, tiles)

    def summary(self, scores: Mapping[tuple[str, str], SelectionScore],
                tiles: int) -> dict[str, float | int | None]:
        result: dict[str, float | int | None] = {f"{self.name}/tiles": tiles}
        for method in METHODS:
            per_class = {c: scores[method, c].result() for c in self.classes}
            for cls, found in per_class.items():
                for key, value in found.items():
                    result[f"{self.name}/{method}/{key}/{cls}"] = value
            for key in ("iou", "box_recall", "box_precision"):
                defined = [f[key] for f in per_class.values() if f[key] is not None]
                result[f"{self.name}/{method}/mean_{key}"] = float(np.mean(defined)) if defined else None
        return result
