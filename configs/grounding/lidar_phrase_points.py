# Phrase -> points -> 3D boxes on held-apart LiDAR tiles, no head trained: the point-text model of
# configs/3d/lidar_captions_pointbert_tiny_cpu.py scores every point of a tile against a text
# prompt (projected group tokens, propagated to the points), the points above the midpoint of the
# tile's relevance range are selected, DBSCAN splits them into clusters and each cluster gives an
# axis-aligned box in file coordinates (domains/3d/grounding.py). Scored against the ASPRS classes
# of the 7 "val" tiles of the pre-training files, beside two selections blind to the prompt
# (every point; the points above, or below, the tile's mid height). Two prompt sets: ShapeKnowledge "lidar"
# (the caption templates and descriptions the model was trained with) and plain phrases that
# appear in no caption. For reference, the same knowledge prompts as a closed set (each point takes
# the phrase it is most similar to: PointOpenVocabSegmentation) on the same tiles.
#   facetvlp eval configs/grounding/lidar_phrase_points.py --checkpoint work_dirs/3d/lidar_captions_pointbert_tiny_cpu
_base_ = ["../3d/lidar_captions_pointbert_tiny_cpu.py"]

# the pre-training's tiles (same files, tile size and classes), its held-apart split
_val = dict(type="LidarTileDataset", tile_size=10.0, classes=(2, 5, 6), num_points=1024, split="val", files=[
    "../shared/data/pointcloud/lidar_las/file_with_both_wkt_and_geotiff_vlrs.las",
    "../shared/data/pointcloud/pdal_classified_las/test/data/las/sample_c.las",
])
_boxes = dict(cluster_eps=1.5, cluster_min_points=8, box_iou=0.25)
eval = [
    dict(type="PointPhraseGrounding", name="phrase_points_knowledge", dataset=_val,
         knowledge=dict(type="ShapeKnowledge", kind="lidar"), **_boxes),
    dict(type="PointPhraseGrounding", name="phrase_points_plain", dataset=_val,
         prompts=dict(ground=["the ground"], high_vegetation=["a tree"], building=["a house"]), **_boxes),
    dict(type="PointOpenVocabSegmentation", name="closed_set_argmax", dataset=_val,
         knowledge=dict(type="ShapeKnowledge", kind="lidar")),
]
work_dir = "work_dirs/grounding/lidar_phrase_points"
