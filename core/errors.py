"""Typed errors. Every reader error names the file and the reason, so a user can act on it."""

from __future__ import annotations

import os

from .privacy import file_key, scrub_path


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


class MissingExtraError(FacetvlpError):
    """A part of facetvlp needs a package that is only installed with one of its extras.

    ``pip install facetvlp`` installs the core; each domain's packages come with its extra
    (``facetvlp[medical]``, ``facetvlp[remote-sensing]``, ``facetvlp[3d]``, or ``facetvlp[all]``).
    """

    def __init__(self, extra: str, module: str, needed_by: str):
        self.extra, self.module, self.needed_by = extra, module, needed_by
        super().__init__(extra, module, needed_by)

    def __str__(self) -> str:
        return (f"{self.needed_by} needs '{self.module}', which is not installed: "
                f'pip install "facetvlp[{self.extra}]"')


class CheckpointError(FacetvlpError):
    """A checkpoint is missing, truncated, corrupt or does not match the model."""


class ReadError(FacetvlpError):
    """A data file could not be turned into a sample.

    Domain readers subclass this (DicomReadError, RasterReadError, PointCloudReadError ...).
    Datasets with ``on_error="skip"`` catch exactly this family and count it.

    The message is ``"{path}: {reason}"``, unless the path may carry patient identifiers
    (``phi_paths``: set by a reader's error class, by a dataset that declares ``phi_paths``, or by
    ``facetvlp inspect``): then it is ``"file {key}: {reason}"`` with the salted key of
    :func:`facetvlp.core.privacy.file_key`, and the path (as given, absolute, real, and its file
    name) is scrubbed from the reason. ``exc.path`` always holds the path, for programs;
    ``facetvlp locate KEY FOLDER`` turns a key back into the path on the data owner's machine.
    """

    #: True when paths of this kind of file may carry patient identifiers (medical data)
    phi_paths = False

    def __init__(self, path: str | os.PathLike, reason: str, *, phi_paths: bool | None = None):
        self.path = os.fspath(path)
        self.reason = reason
        if phi_paths is not None:
            self.phi_paths = phi_paths
        super().__init__(self.path, reason)  # both args, so the error pickles (DataLoader workers)

    def __str__(self) -> str:
        if not self.phi_paths:
            return f"{self.path}: {self.reason}"
        return f"file {file_key(self.path)}: {scrub_path(self.reason, self.path)}"


class UnsupportedFileError(ReadError):
    """The file is readable but of a kind facetvlp does not turn into samples."""
