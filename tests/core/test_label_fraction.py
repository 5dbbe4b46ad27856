"""LabelFraction: a seeded share of whole groups (patients, scenes), reproducible and nested."""

from __future__ import annotations

from collections import defaultdict

import pytest

import facetvlp.core  # noqa: F401
from facetvlp.core.datasets import SyntheticImageText
from facetvlp.core.errors import ConfigError
from facetvlp.core.label_fraction import LabelFraction
from facetvlp.core.registry import DATASETS, build

BASE = dict(type="SyntheticSegmentation", size=200, image_size=16, group_size=5)  # 40 groups


def members(dataset):
    by_group = defaultdict(set)
    for i in range(len(dataset.dataset)):
        by_group[dataset.dataset.group_of(i)].add(i)
    return by_group


@pytest.mark.parametrize("fraction, groups", [(0.01, 1), (0.1, 4), (0.5, 20), (1.0, 40)])
def test_whole_groups_are_kept_in_the_asked_share(fraction, groups):
    subset = build(DATASETS, dict(type="LabelFraction", dataset=BASE, fraction=fraction, seed=3))
    kept = set(subset.indices)
    by_group = members(subset)
    chosen = [g for g, items in by_group.items() if items & kept]
    assert len(chosen) == groups
    for group in chosen:  # never split: all of a chosen group's items are in
        assert by_group[group] <= kept
    assert len(subset) == 5 * groups
    assert {subset.group_of(i) for i in range(len(subset))} == set(chosen)


def test_the_draw_is_reproducible_seeded_and_nested():
    def draw(fraction, seed):
        return set(LabelFraction(dataset=BASE, fraction=fraction, seed=seed).groups)

    assert draw(0.1, 0) == draw(0.1, 0)
    assert draw(0.1, 0) != draw(0.1, 1)
    assert draw(0.1, 0) < draw(0.5, 0) < draw(1.0, 0)


def test_items_without_groups_are_drawn_one_by_one_and_samples_come_from_the_base():
    base = SyntheticImageText(size=30, image_size=16)  # no group_of
    subset = LabelFraction(dataset=base, fraction=0.2, seed=0)
    assert len(subset) == 6
    first = subset[0]
    assert first["meta"]["index"] == subset.indices[0]
    assert subset.classes == base.classes
    subset.seed = 7  # the engine's seed reaches the wrapped dataset's augmentation stream
    assert base.seed == 7 and subset.draw_seed == 0


def test_fraction_must_be_a_share():
    with pytest.raises(ConfigError, match="fraction"):
        LabelFraction(dataset=BASE, fraction=0.0)
