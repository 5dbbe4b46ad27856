"""Plots written next to metrics.json: loss curve, confusion matrix, ROC curves, retrieval curve.

Figures are built with matplotlib's object API on the Agg canvas, never pyplot: no global figure
state, no display needed, safe in a training process that also runs DataLoader workers.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import metrics

#: JSONL keys that are bookkeeping, not losses
NOT_LOSSES = {"step", "lr", "skipped", "samples_per_s", "epoch"}


def _new_figure(width: float, height: float, rows: int = 1, **kwargs):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, 1, **kwargs)


def _save(fig: Figure, out_path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path


def read_log(jsonl_path) -> list[dict]:
    """Records of a JSONL training log, one per step; for a step logged twice (a run resumed from
    an earlier checkpoint) the later record wins."""
    by_step: dict[int, dict] = {}
    for line in Path(jsonl_path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed run may be cut short
        if isinstance(record, dict) and "step" in record:
            by_step[int(record["step"])] = record
    return [by_step[s] for s in sorted(by_step)]


def plot_loss_curve(jsonl_path, out_path) -> Path:
    """Total loss and every logged part against step; the learning rate below when logged."""
    records = read_log(jsonl_path)
    keys = sorted({k for r in records for k, v in r.items()
                   if k not in NOT_LOSSES and isinstance(v, (int, float)) and not isinstance(v, bool)})
    keys.sort(key=lambda k: k != "loss")  # total first
    has_lr = any("lr" in r for r in records)
    fig, axes = _new_figure(7, 6 if has_lr else 4, rows=2 if has_lr else 1, sharex=True,
                            squeeze=False)
    ax = axes[0, 0]
    for key in keys:
        points = [(r["step"], r[key]) for r in records if key in r and math.isfinite(r[key])]
        if points:
            steps, values = zip(*points)
            ax.plot(steps, values, label=key, linewidth=2.0 if key == "loss" else 1.0)
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize="small")
    if has_lr:
        lr_points = [(r["step"], r["lr"]) for r in records if "lr" in r]
        axes[1, 0].plot(*zip(*lr_points), color="tab:gray")
        axes[1, 0].set_ylabel("learning rate")
        axes[1, 0].grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, out_path)


def plot_confusion(cm, classes: Sequence[str], out_path) -> Path:
    """Counts in each cell, coloured by the fraction of the true class (row) they hold."""
    cm = torch.as_tensor(cm).long()
    k = len(classes)
    fractions = cm.double() / cm.sum(dim=1, keepdim=True).clamp(min=1)
    size = max(4.0, 0.6 * k + 2)
    fig, ax = _new_figure(size, size)
    image = ax.imshow(fractions.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class")
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                colour = "white" if fractions[i, j] > 0.5 else "black"
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", color=colour, fontsize=8)
    ax.set_title("confusion matrix")
    return _save(fig, out_path)


def plot_roc(scores, labels, classes: Sequence[str], out_path) -> Path:
    """One ROC curve per class that has both positives and negatives, AUC in the legend."""
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(labels)
    if labels.ndim == 1:
        labels = torch.nn.functional.one_hot(labels.long(), scores.shape[1])
    fig, ax = _new_figure(6, 5)
    aucs = metrics.roc_auc(scores, labels)
    for k, name in enumerate(classes):
        if math.isnan(float(aucs[k])):
            continue
        fpr, tpr = metrics.roc_curve(scores[:, k], labels[:, k])
        ax.plot(fpr.numpy(), tpr.numpy(), label=f"{name} (AUC {float(aucs[k]):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="tab:gray", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title("ROC")
    ax.legend(fontsize="small", loc="lower right")
    return _save(fig, out_path)


def plot_retrieval(recalls: dict[str, float], out_path) -> Path:
    """Recall@K against K for both directions, from ``metrics.retrieval_recall``'s dict."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for key, value in recalls.items():
        match = re.fullmatch(r"(i2t|t2i)_R@(\d+)", key)
        if match:
            curves.setdefault(match[1], []).append((int(match[2]), value))
    fig, ax = _new_figure(6, 4)
    names = {"i2t": "item -> text", "t2i": "text -> item"}
    for direction, points in sorted(curves.items()):
        ks, values = zip(*sorted(points))
        ax.plot(ks, values, marker="o", label=names[direction])
    ax.set_xlabel("K")
    ax.set_ylabel("recall@K")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("retrieval")
    if curves:
        ax.legend()
    return _save(fig, out_path)


def plot_boxes(images, predictions, targets, queries: Sequence[str], out_path) -> Path:
    """Each image with its true boxes (green, solid) and, per text that has a true box, the
    highest-scoring predicted box for that text (orange, dashed, with its score)."""
    from matplotlib.patches import Rectangle

    count = max(len(images), 1)
    fig = Figure(figsize=(3.2 * count, 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, count, squeeze=False)[0]
    for ax, image, pred, true in zip(axes, images, predictions, targets):
        shown = image.float()
        shown = (shown - shown.min()) / (shown.max() - shown.min() + 1e-8)
        ax.imshow(shown.permute(1, 2, 0).numpy() if shown.shape[0] == 3 else shown[0].numpy(), cmap="gray")
        for box, label in zip(true["boxes"].tolist(), true["labels"].tolist()):
            ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="lime", lw=1.5))
            mine = pred["labels"] == label
            if mine.any():
                best = int(pred["scores"][mine].argmax())
                p = pred["boxes"][mine][best].tolist()
                ax.add_patch(Rectangle(p[:2], p[2] - p[0], p[3] - p[1], fill=False, color="orange",
                                       lw=1.5, ls="--"))
                ax.text(p[0], p[1], f"{queries[label][:18]} {float(pred['scores'][mine][best]):.2f}",
                        color="orange", fontsize=6, va="bottom")
        ax.set_axis_off()
    return _save(fig, out_path)


def plot_similarity_maps(cases, out_path) -> Path:
    """Zero-shot localisation examples: each text's similarity map with the true region outlined."""
    count = max(len(cases), 1)
    fig = Figure(figsize=(3.0 * count, 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, count, squeeze=False)[0]
    for ax, (name, sim, region) in zip(axes, cases):
        ax.imshow(sim, cmap="magma")
        ax.contour(region.astype(float), levels=[0.5], colors="cyan", linewidths=1.0)
        ax.set_title(name[:24], fontsize=8)
        ax.set_axis_off()
    return _save(fig, out_path)
