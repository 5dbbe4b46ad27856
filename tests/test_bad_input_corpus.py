"""Every broken input of bad_input_corpus.py (>= 40 files made from real ones, across DICOM,
GeoTIFF, OSM, PLY/PCD/OFF/OBJ/XYZ, LAS/LAZ, manifests and configs) gives its typed error naming the
file: through the reader, through `facetvlp inspect` (exit 2, one line, no traceback, nothing
printed by a native library), and through a dataset in skip mode."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bad_input_corpus import GEOJSON, GEOTIFF, PBF, PCD, PNG, REPO, build_corpus

from facetvlp.core.errors import ReadError
from facetvlp.core.privacy import file_key

CORPUS_DIR_NAME = "bad_inputs"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {case.name: case for case in build_corpus(tmp_path_factory.mktemp(CORPUS_DIR_NAME))}


def _names():
    # the names only; the files are made once per module by the fixture
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return [case.name for case in build_corpus(Path(folder))]


NAMES = _names()


def test_the_corpus_covers_every_kind_of_input():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        cases = build_corpus(Path(folder))
        assert len(cases) >= 40
        kinds = {case.kind for case in cases}
        assert kinds == {"dicom", "raster", "osm", "points", "lidar", "table", "config"}
        suffixes = {"".join(case.path.suffixes[-2:]) if case.path.name.endswith(".bz2") else case.path.suffix
                    for case in cases}
        for wanted in (".dcm", ".tif", ".osm", ".osm.bz2", ".pbf", ".json", ".geojson", ".ply", ".pcd",
                       ".off", ".obj", ".xyz", ".las", ".laz", ".csv", ".jsonl", ".py"):
            assert wanted in suffixes, wanted
        assert sum(case.path.is_dir() for case in cases) >= 6
        assert sum(case.path.stat().st_size == 0 for case in cases if case.path.is_file()) >= 8


def names_the_file(message: str, path) -> bool:
    """An error names its file by path, or, for files that may name a patient (medical), by the
    salted key `facetvlp locate` resolves (core/privacy.py), and then never by path."""
    if str(path) in message:
        return "file " + file_key(path) not in message
    return f"file {file_key(path)}" in message and path.name not in message


@pytest.mark.parametrize("name", NAMES)
def test_the_reader_raises_the_typed_error_and_prints_nothing(corpus, name, capfd):
    case = corpus[name]
    with pytest.raises(case.error) as caught:
        case.reader(case.path)
    assert names_the_file(str(caught.value), case.path)
    if case.reason:
        assert re.search(case.reason, str(caught.value)), str(caught.value)
    out, err = capfd.readouterr()
    assert out == "" and err == "", f"a library printed: {err[:300]!r}"


@pytest.mark.parametrize("name", NAMES)
def test_inspect_exits_2_with_one_line_naming_the_file(corpus, name, capfd):
    from facetvlp.cli import main

    case = corpus[name]
    code = main(["inspect", str(case.path)])
    _, err = capfd.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[:500]
    assert lines[0].startswith("facetvlp inspect: error: ") and names_the_file(lines[0], case.path)
    assert "Traceback" not in err


def test_inspect_reads_bare_pbf_and_json_osm_files_and_refuses_a_folder(tmp_path, capsys):
    from facetvlp.cli import main
    from facetvlp.domains.remote_sensing.osm import read_osm_layer

    for source, name in ((PBF, "extract.pbf"), (GEOJSON, "features.json")):
        shutil.copyfile(source, tmp_path / name)
        assert main(["inspect", str(tmp_path / name)]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["kind"] in ("osm", "geojson") and len(read_osm_layer(tmp_path / name)) > 0
    folder = tmp_path / "scans"
    folder.mkdir()
    assert main(["inspect", str(folder)]) == 2
    # the core cannot tell whose folder it is, so it names it by key (see docs/architecture.md)
    assert capsys.readouterr().err.strip() == f"facetvlp inspect: error: file {file_key(folder)}: is a directory; inspect reads one file"


# -- datasets ------------------------------------------------------------------------------------

def _manifest_dataset(folder: Path, bad: Path, on_error: str):
    from facetvlp.domains.medical.datasets import CXRManifestDataset

    folder.mkdir(parents=True)
    manifest = folder / "manifest.csv"
    manifest.write_text(f"path,labels\n{PNG},normal\n{bad},normal\n")
    return CXRManifestDataset(manifest, classes=["normal"], image_size=32, text="label",
                              drop_missing=False, on_error=on_error)


def _scene_dataset(folder: Path, bad: Path, on_error: str):
    from facetvlp.domains.remote_sensing.scene_dataset import SceneFolderDataset

    (folder / "forest").mkdir(parents=True)
    shutil.copyfile(GEOTIFF, folder / "forest" / "a_good.tif")
    _place(bad, folder / "forest" / f"b_{bad.name}")
    return SceneFolderDataset(folder, image_size=32, on_error=on_error)


def _shape_dataset(folder: Path, bad: Path, on_error: str):
    from facetvlp.domains.pointcloud.datasets import ShapeFolderDataset

    (folder / "bunny").mkdir(parents=True)
    shutil.copyfile(PCD, folder / "bunny" / "a_good.pcd")
    _place(bad, folder / "bunny" / f"b_{bad.name}")
    return ShapeFolderDataset(folder, num_points=64, on_error=on_error)


def _place(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)


ITEM_DATASETS = {"dicom": _manifest_dataset, "raster": _scene_dataset, "points": _shape_dataset}


def _index_dataset(case, folder: Path):
    """Build the dataset that this index-like file feeds, in skip mode."""
    if case.kind == "osm":
        from facetvlp.domains.remote_sensing.pairs import OSMCaptionPairs

        return OSMCaptionPairs(str(GEOTIFF), str(case.path), tile_size=64, cache_dir=str(folder), on_error="skip")
    if case.kind == "lidar":
        from facetvlp.domains.pointcloud.datasets import LidarTileDataset

        return LidarTileDataset([str(case.path)], tile_size=10.0, on_error="skip")
    if case.kind == "table":
        from facetvlp.domains.medical.datasets import CXRManifestDataset

        return CXRManifestDataset(case.path, root=PNG.parent, on_error="skip")
    from facetvlp.core.config import load_config
    from facetvlp.core.registry import DATASETS, build

    cfg = load_config(case.path)  # a config is the index of a run: it fails before any dataset
    return build(DATASETS, cfg["train_data"]["dataset"])


@pytest.mark.parametrize("name", NAMES)
def test_a_skip_mode_dataset_counts_the_file_or_cannot_be_built(corpus, name, tmp_path):
    case = corpus[name]
    if case.dataset == "index":
        # a manifest, an OSM layer, a LiDAR tile source or a config is the dataset itself
        with pytest.raises(case.error) as caught:
            _index_dataset(case, tmp_path)
        assert names_the_file(str(caught.value), case.path)
        return
    dataset = ITEM_DATASETS[case.kind](tmp_path / "skip", case.path, "skip")
    if case.path.is_dir():
        # a folder named like a data file is not an item of a folder-per-class dataset
        assert len(dataset) == (2 if case.kind == "dicom" else 1)
        if case.kind != "dicom":
            return
    sample = dataset[1]  # the bad item: served by the readable one, and counted
    assert sample["meta"]["skipped"] == 1 and sample["meta"]["index"] == 0
    assert dataset.skipped == 1
    strict = ITEM_DATASETS[case.kind](tmp_path / "raise", case.path, "raise")
    with pytest.raises(case.error):
        strict[1]


def test_a_training_run_counts_the_broken_rasters_in_metrics_json(corpus, tmp_path):
    """The engine end to end: a scene folder with three broken GeoTIFFs among five real ones."""
    from facetvlp.core.config import load_config
    from facetvlp.core.engine import train

    folder = tmp_path / "scenes" / "forest"
    folder.mkdir(parents=True)
    for k in range(5):
        shutil.copyfile(GEOTIFF, folder / f"good_{k}.tif")
    for name in ("tif_cut_in_pixels", "tif_empty", "tif_is_las"):
        shutil.copyfile(corpus[name].path, folder / f"zz_{name}.tif")
    config = tmp_path / "skip.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/_base_/default_runtime.py')!r}, "
        f"{str(REPO / 'configs/_base_/clip_vit_tiny_minilm.py')!r}]\n"
        "model = dict(towers=dict(image=dict(image_size=32)), embed_dim=32)\n"
        f"train_data = dict(dataset=dict(type='SceneFolderDataset', root={str(tmp_path / 'scenes')!r},"
        " image_size=32, on_error='skip'), batch_size=8, shuffle=False)\n"
        "schedule = dict(max_steps=1, warmup_steps=0)\n"
        "engine = dict(precision='fp32', log_every=1, tensorboard=False, threads=1)\n"
        f"work_dir = {str(tmp_path / 'run')!r}\n")
    import facetvlp.domains.remote_sensing  # noqa: F401  (registers SceneFolderDataset)

    train(load_config(config))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # items 5, 6, 7 are broken: 5 passes over 5, 6, 7; 6 over 6, 7; 7 over 7
    assert metrics["train/skipped"] == 6
    assert np.isfinite(metrics["train/loss"])


def test_errors_are_read_errors_so_skip_mode_catches_them(corpus):
    from facetvlp.core.errors import ConfigError

    for case in corpus.values():
        assert issubclass(case.error, ConfigError if case.kind == "config" else ReadError), case.name
