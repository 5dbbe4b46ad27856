"""Typed errors. Every reader error names the file and the reason, so a user can act on it."""

from __future__ import annotations

import os


class FacetvlpError(Exception):
    """Base class of every error facetvlp raises on purpose."""


class ConfigError(FacetvlpError):
    """A config is malformed: unknown `type`, missing key, bad value."""


class CheckpointError(FacetvlpError):
    """A checkpoint is missing, truncated, corrupt or does not match the model."""


class ReadError(FacetvlpError):
    """A data file could not be turned into a sample.

    Domain readers subclass this (DicomReadError, RasterReadError, PointCloudReadError ...).
    Datasets with ``on_error="skip"`` catch exactly this family and count it.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFileError(ReadError):
    """The file is readable but of a kind facetvlp does not turn into samples."""
