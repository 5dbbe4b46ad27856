"""Typed errors. Every reader error names the file and the reason, so a user can act on it."""

from __future__ import annotations

import os


class FacetvlpError(Exception):
    """Base class of every error facetvlp raises on purpose."""


class ConfigError(FacetvlpError):
    """A config is malformed: unknown `type` or key, missing key, a value of the wrong type.

    The message reads ``"{file}: {key}: {reason}"``. Code that builds a part of a model does not
    know where its config came from, so ``key`` and ``file`` may be filled in on the way out:
    ``registry.build`` prefixes the key it was building (``model`` + ``towers.image``) and
    ``config.names_config_file`` adds the config file.
    """

    def __init__(self, reason: str, key: str | None = None, file: str | None = None):
        super().__init__(reason)
        self.reason, self.key, self.file = reason, key, file

    def within(self, key: str) -> "ConfigError":
        """Locate this error under ``key`` (the part of the config that was being built)."""
        self.key = f"{key}.{self.key}" if self.key else key
        return self

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.key, self.reason) if part)


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
