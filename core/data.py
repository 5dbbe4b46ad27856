"""Dataset base class with the `on_error` policy shared by every domain.

A domain dataset implements ``__len__`` and ``load(index) -> sample dict``. On a :class:`ReadError`
the base class either re-raises (``on_error="raise"``) or, with ``on_error="skip"``, logs the file
(by key for ``phi_paths`` datasets) and reason and serves the next readable item in its place,
recording how many it passed over in ``meta["skipped"]``. Replacing rather than dropping keeps
every batch full, which DDP needs (all ranks gather equal-sized features); the collate sums the
counts and the engine reports them in its logs and metrics.json. One bad file never kills a run in
skip mode.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from torch.utils.data import Dataset

from .errors import ConfigError, ReadError
from .privacy import file_key
from .sample import check_sample

log = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("raise", "skip")


class SampleDataset(Dataset):
    """Base of all facetvlp datasets: ``dataset[i]`` is a sample dict."""

    #: class names, in label order, when the dataset has labels (zero-shot evaluators read it)
    classes: list[str] = []
    #: give up after this many unreadable items in a row: the data is broken, not one file
    max_consecutive_errors = 32
    #: True when file or folder names of this data may carry patient identifiers (medical data):
    #: read errors raised while loading name their file by key, never by path, and the config a
    #: run dumps redacts this dataset's path arguments (see facetvlp.core.privacy)
    phi_paths = False

    def __init__(self, on_error: str = "raise", seed: int = 0):
        if on_error not in ON_ERROR_CHOICES:
            raise ConfigError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
        self.on_error = on_error
        self.seed = seed
        self.epoch = 0
        self.skipped = 0  # in this process; batches carry the counts across workers

    def load(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sample_seed(self, index: int) -> int:
        """A seed for random augmentation of item `index` that depends only on (seed, epoch,
        index): augmentations drawn from it are the same after a resume and with any number of
        workers. Pass it to MONAI's ``set_random_state(seed=...)`` or ``numpy.random.default_rng``."""
        digest = hashlib.blake2b(f"{self.seed}:{self.epoch}:{index}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "little") % (2**31)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.on_error == "raise":
            return self._checked(self._load_marked(index), index)
        first_error = None
        for offset in range(min(len(self), self.max_consecutive_errors)):
            current = (index + offset) % len(self)
            try:
                sample = self._checked(self._load_marked(current), current)
            except ReadError as exc:
                self.skipped += 1
                first_error = first_error or exc
                hint = (f" (find it with: facetvlp locate {file_key(exc.path)} DATA_FOLDER)"
                        if exc.phi_paths else "")
                log.warning("skipping unreadable item %d: %s: %s%s", current, type(exc).__name__, exc, hint)
                continue
            sample["meta"]["skipped"] = offset
            return sample
        raise ReadError(first_error.path, f"{self.max_consecutive_errors} unreadable items in a row "
                        f"from index {index}; first: {first_error.reason}",
                        phi_paths=first_error.phi_paths) from None

    def _load_marked(self, index: int) -> dict[str, Any]:
        """``load(index)``; a ReadError from a ``phi_paths`` dataset leaves marked as such and
        without its chained causes (third-party messages there may quote the path)."""
        try:
            return self.load(index)
        except ReadError as exc:
            if not self.phi_paths:
                raise
            exc.phi_paths = True
            raise exc from None

    def _checked(self, sample: dict[str, Any], index: int) -> dict[str, Any]:
        sample.setdefault("meta", {})
        sample["meta"].setdefault("index", int(index))
        return check_sample(sample, where=f"{type(self).__name__}[{index}]")
