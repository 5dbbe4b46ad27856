"""Optional on-disk cache of decoded, preprocessed DICOM images, so epochs after the first skip
decoding (JPEG 2000 radiographs cost tens of ms each; a cached 224 px array costs well under one).

An entry's file name is a salted one-way hash (see :mod:`.phi`) of the source's real path, its
mtime and size, and the preprocessing parameters: a changed file or a changed setting is a miss,
and neither the name nor the contents reveal the path (PACS exports name files by SOP Instance UID).
An entry holds the array (``.npy``) and the allow-listed safe metadata (``.json``), nothing else.
Writes go to a temporary file first and are renamed into place, so concurrent DataLoader workers
and killed runs never leave a half-written entry.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import MapTransform

from facetvlp.core.registry import TRANSFORMS, register

from .dicom_read import DicomReadError
from .phi import pseudonymous_key
from .transforms import AspectResizePadd, LoadDicomd


class DicomCache:
    """``cache.load(path, make)`` returns ``make(path)``'s (array, meta), computed once per key."""

    def __init__(self, root: str | os.PathLike, params: Mapping[str, Any], dtype: str = "float16"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # float16 halves the disk and page-cache footprint; [0, 1] images keep ~1e-3 precision
        self.dtype = np.dtype(dtype)
        self.params = json.dumps({**params, "dtype": self.dtype.str}, sort_keys=True)
        self.hits = self.misses = 0

    def key(self, path: str | os.PathLike) -> str:
        real = os.path.realpath(path)
        try:
            stat = os.stat(real)
        except OSError as exc:  # its message would quote the path
            raise DicomReadError(path, f"cannot open: {exc.strerror}") from None
        return pseudonymous_key(json.dumps([real, stat.st_mtime_ns, stat.st_size, self.params]), "cache")

    def load(self, path: str | os.PathLike, make: Callable[[str], tuple[np.ndarray, dict]]) -> tuple[np.ndarray, dict]:
        key = self.key(path)
        array_file, meta_file = self.root / f"{key}.npy", self.root / f"{key}.json"
        try:
            array = np.load(array_file)
            meta = json.loads(meta_file.read_text())
            self.hits += 1
            return array.astype(np.float32), meta
        except (FileNotFoundError, ValueError, EOFError):
            pass  # a miss, or an entry a crash left unreadable: rebuild it
        self.misses += 1
        array, meta = make(os.fspath(path))
        stored = np.asarray(array, dtype=self.dtype)  # a miss returns what a hit will: same epoch to epoch
        self._write(array_file, lambda handle: np.save(handle, stored))
        self._write(meta_file, lambda handle: handle.write(json.dumps(meta).encode()))
        return stored.astype(np.float32), meta

    def _write(self, target: Path, writer: Callable) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                writer(handle)
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise


@register(TRANSFORMS)
class CachedLoadDicomd(MapTransform):
    """LoadDicomd + AspectResizePadd through a :class:`DicomCache` in ``cache_dir``."""

    def __init__(self, keys: Sequence[Hashable] = ("image",), cache_dir: str | os.PathLike = "work_dirs/dicom_cache",
                 size: int = 224, window="header", percentiles=(0.5, 99.5), channels: int | None = None,
                 dtype: str = "float16"):
        super().__init__(keys)
        self.load_dicom = LoadDicomd(("image",), window=window, percentiles=percentiles, channels=channels)
        self.fit = AspectResizePadd(("image",), size=size)
        # "resize" names the resizer, so caches made by an earlier one (MONAI's Resize) are not reused
        params = {"size": size, "window": window, "percentiles": list(percentiles), "channels": channels,
                  "resize": "fit_square"}
        self.cache = DicomCache(cache_dir, params, dtype=dtype)

    def _make(self, path: str) -> tuple[np.ndarray, dict]:
        sample = self.fit(self.load_dicom({"image": path}))
        return sample["image"].numpy(), sample["meta"]

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        sample = dict(data)
        for key in self.key_iterator(sample):
            array, meta = self.cache.load(sample[key], self._make)
            sample[key] = torch.from_numpy(array)
            sample["meta"] = {**sample.get("meta", {}), **meta}
        return sample
