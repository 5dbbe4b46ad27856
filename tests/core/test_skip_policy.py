"""on_error: 'raise' stops on a bad file; 'skip' serves the next readable item, counts the bad
one, and a whole training run goes through with the count in metrics.json."""

import json

import pytest
import torch

import facetvlp.core  # noqa: F401
from facetvlp.core.collate import Collator
from facetvlp.core.data import SampleDataset
from facetvlp.core.datasets import SyntheticImageText
from facetvlp.core.errors import ReadError
from facetvlp.core.registry import DATASETS

from engine_support import REPO


@DATASETS.register_module(force=True)
class SometimesBroken(SyntheticImageText):
    """Synthetic items, except that every index in `bad` behaves like an unreadable file."""

    def __init__(self, bad=(), **kwargs):
        super().__init__(**kwargs)
        self.bad = set(bad)

    def load(self, index):
        if index in self.bad:
            raise ReadError(f"/data/item_{index}.dcm", "truncated pixel data")
        return super().load(index)


def test_raise_mode_names_the_file():
    data = SometimesBroken(bad={3}, size=8, image_size=8)
    with pytest.raises(ReadError, match=r"/data/item_3.dcm: truncated pixel data"):
        data[3]


def test_skip_mode_replaces_and_counts():
    data = SometimesBroken(bad={3, 4}, size=8, image_size=8, on_error="skip")
    sample = data[3]
    assert sample["meta"]["index"] == 5 and sample["meta"]["skipped"] == 2
    batch = Collator()([data[i] for i in range(2, 6)])
    # asking for 3 passes over 3 and 4; asking for 4 passes over 4 again: three skip events
    assert batch["size"] == 4 and batch["skipped"] == 3


def test_all_bad_gives_a_clear_error():
    data = SometimesBroken(bad=set(range(8)), size=8, image_size=8, on_error="skip")
    with pytest.raises(ReadError, match="unreadable items in a row"):
        data[0]


def test_training_survives_bad_files_in_skip_mode(tmp_path):
    from facetvlp.core.config import load_config
    from facetvlp.core.engine import train

    config = tmp_path / "skip.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/_base_/default_runtime.py')!r}, "
        f"{str(REPO / 'configs/_base_/clip_vit_tiny_minilm.py')!r}]\n"
        "model = dict(towers=dict(image=dict(image_size=32)), embed_dim=32)\n"
        "train_data = dict(dataset=dict(type='SometimesBroken', bad=[0, 5, 9], size=16, image_size=32,"
        " on_error='skip'), batch_size=8, shuffle=False)\n"
        "schedule = dict(max_steps=2, warmup_steps=0)\n"
        "engine = dict(precision='fp32', log_every=1, tensorboard=False, threads=1)\n"
        f"work_dir = {str(tmp_path / 'run')!r}\n")
    summary = train(load_config(config))
    assert summary["train/steps"] == 2 and summary["train/skipped"] == 3
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train/skipped"] == 3 and torch.isfinite(torch.tensor(metrics["train/loss"]))
