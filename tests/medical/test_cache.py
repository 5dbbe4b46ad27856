"""The preprocessed DICOM cache: hits skip decoding, changes miss, entries are atomic and opaque."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from facetvlp.domains.medical.cache import CachedLoadDicomd, DicomCache
from facetvlp.domains.medical.transforms import AspectResizePadd, LoadDicomd


@pytest.fixture
def ct_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("FACETVLP_PHI_SALT", "test-salt")
    path = tmp_path / "src" / "CT_small.dcm"
    path.parent.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), path)
    return path


def test_second_load_is_a_hit_that_does_not_decode(ct_copy, tmp_path):
    cache = DicomCache(tmp_path / "cache", {"size": 64})
    calls = []

    def make(path):
        calls.append(path)
        return np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(1, 64, 64), {"modality": "CT"}

    first, meta = cache.load(ct_copy, make)
    second, meta_again = cache.load(ct_copy, make)
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(second, first)  # the miss already returns the float16-rounded array
    assert second.dtype == np.float32 and meta_again == meta == {"modality": "CT"}


def test_changed_source_or_changed_params_miss(ct_copy, tmp_path):
    cache = DicomCache(tmp_path / "cache", {"size": 64})
    key = cache.key(ct_copy)
    assert DicomCache(tmp_path / "cache", {"size": 128}).key(ct_copy) != key
    stat = os.stat(ct_copy)
    os.utime(ct_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.key(ct_copy) != key
    assert "CT_small" not in key and len(key) == 16


def test_cached_transform_equals_the_uncached_steps_and_names_files_opaquely(ct_copy, tmp_path):
    cached = CachedLoadDicomd(cache_dir=tmp_path / "cache", size=96)
    out = cached({"image": str(ct_copy)})
    again = cached({"image": str(ct_copy)})
    reference = AspectResizePadd(size=96)(LoadDicomd()({"image": str(ct_copy)}))["image"]
    torch.testing.assert_close(out["image"], reference, atol=1e-3, rtol=0)
    torch.testing.assert_close(again["image"], out["image"])
    assert cached.cache.hits == 1 and again["meta"] == out["meta"]
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(names) == 2 and all("CT_small" not in n and "src" not in n for n in names)


def test_a_failed_build_leaves_no_entry(ct_copy, tmp_path):
    cache = DicomCache(tmp_path / "cache", {"size": 64})

    def broken(path):
        return object(), {}  # np.save cannot store this as float16

    with pytest.raises((TypeError, ValueError)):
        cache.load(ct_copy, broken)
    assert list((tmp_path / "cache").iterdir()) == []
