"""Segmentation plots: prediction-vs-truth overlays and per-class Dice / IoU bars (Agg canvas,
no pyplot, like plots.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import _save


def _grid_figure(width: float, height: float, rows: int, cols: int):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


def _with_gaps(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def display_image(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (C, D, H, W) (middle slice) -> (H, W, 3) in [0, 1], contrast-stretched."""
    image = image.float()
    if image.ndim == 4:
        image = image[:, image.shape[1] // 2]
    image = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
    low, high = image.min(), image.max()
    return ((image - low) / (high - low).clamp(min=1e-8)).permute(1, 2, 0).numpy()


def label_colours(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(H, W) class indices -> (H, W, 4) RGBA: class k in tab10/tab20 colour k, background
    (0) and ignored (-1) transparent."""
    palette = colormaps["tab10" if num_classes <= 10 else "tab20"]
    labels = labels.numpy()
    rgba = np.zeros((*labels.shape, 4))
    for k in range(1, num_classes):
        rgba[labels == k] = (*palette(k % palette.N)[:3], 0.45)
    return rgba


def middle_slice(labels: torch.Tensor) -> torch.Tensor:
    return labels[labels.shape[0] // 2] if labels.ndim == 3 else labels


def plot_overlays(items: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                  classes: Sequence[str], out_path) -> Path:
    """One row per item: image, truth over image, prediction over image."""
    rows = max(1, len(items))
    fig, axes = _grid_figure(9, 3 * rows, rows, 3)
    for row, (image, truth, pred) in enumerate(items):
        shown = display_image(image)
        for col, (title, labels) in enumerate((("image", None), ("truth", truth), ("prediction", pred))):
            ax = axes[row, col]
            ax.imshow(shown)
            if labels is not None:
                ax.imshow(label_colours(middle_slice(labels), len(classes)))
            ax.set_title(title if row == 0 else "")
            ax.axis("off")
    return _save(fig, out_path)


def plot_class_scores(dice: Sequence[float | None], iou: Sequence[float | None],
                      classes: Sequence[str], out_path) -> Path:
    """Per-class Dice and IoU side by side; an undefined score (no such class in the truth) is
    left as a gap."""
    k = len(classes)
    fig, axes = _grid_figure(max(5.0, 0.8 * k + 2), 4, 1, 1)
    ax = axes[0, 0]
    x = np.arange(k)
    ax.bar(x - 0.2, _with_gaps(dice), width=0.4, label="Dice")
    ax.bar(x + 0.2, _with_gaps(iou), width=0.4, label="IoU")
    ax.set_xticks(x, labels=list(classes), rotation=45 if k > 6 else 0, ha="right" if k > 6 else "center")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("score")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    ax.set_title("per-class Dice and IoU")
    return _save(fig, out_path)
