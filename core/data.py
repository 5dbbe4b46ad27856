"""Dataset base class with the `on_error` policy shared by every domain.

A domain dataset implements ``__len__`` and ``load(index) -> sample dict``. The base class turns a
:class:`ReadError` into either an exception (``on_error="raise"``) or a skipped item
(``on_error="skip"``): the item comes back as ``None``, the collate drops it and counts it, and the
engine reports the count in its logs and metrics.json. One bad file never kills a run in skip mode.
"""

from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import Dataset

from .errors import ConfigError, ReadError
from .sample import check_sample

log = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("raise", "skip")


class SampleDataset(Dataset):
    """Base of all facetvlp datasets: ``dataset[i]`` is a sample dict, or None when skipped."""

    #: class names, in label order, when the dataset has labels (zero-shot evaluators read it)
    classes: list[str] = []

    def __init__(self, on_error: str = "raise"):
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
        self.on_error = on_error
        self.skipped = 0  # counted in this process; the collate carries counts across workers

    def load(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        try:
            sample = self.load(index)
        except ReadError as exc:
            if self.on_error == "raise":
                raise
            self.skipped += 1
            log.warning("skipping item %d: %s", index, exc)
            return None
        sample.setdefault("meta", {})
        sample["meta"].setdefault("index", int(index))
        return check_sample(sample, where=f"{type(self).__name__}[{index}]")
