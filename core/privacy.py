"""Naming a file without revealing its path: salted one-way keys, and finding the file again.

Medical file and folder names often carry patient identifiers (PACS exports name files by SOP
Instance UID; archives sort studies into folders like ``NAME_MRN``). Errors, logs and metadata of
such data name a file by :func:`file_key` instead of its path. The key is a salted SHA-256 of the
file's real path, so it cannot be turned back into the path, yet the user who owns the data finds
the file with :func:`locate` (``facetvlp locate KEY FOLDER``): it hashes every path under FOLDER
with the same salt and prints the matches to their own terminal.

The salt is ``FACETVLP_PHI_SALT`` when set (set it on every node of a cluster so keys agree),
otherwise a random secret created once per user under ``$XDG_CONFIG_HOME/facetvlp`` (mode 0600).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

KEY_HEX_CHARS = 16  # 64 bits: collisions are negligible for any realistic archive
REDACTED_PREFIX = "<redacted path, file key "


def _salt() -> bytes:
    return _salt_for(os.environ.get("FACETVLP_PHI_SALT"), os.environ.get("XDG_CONFIG_HOME"))


@functools.lru_cache(maxsize=8)  # resolved once per process (per setting), not once per file
def _salt_for(env_salt: str | None, config_home: str | None) -> bytes:
    if env_salt:
        return env_salt.encode()
    salt_file = Path(config_home or Path.home() / ".config") / "facetvlp" / "phi_salt"
    try:
        return salt_file.read_bytes()
    except FileNotFoundError:
        salt_file.parent.mkdir(parents=True, exist_ok=True)
        salt = os.urandom(32).hex().encode()
        # O_EXCL: if another worker created it first, read theirs so every process agrees
        try:
            fd = os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return salt_file.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(salt)
        return salt


def salted_key(text: str, kind: str) -> str:
    """Salted, truncated SHA-256 of ``text``: equal texts give equal keys, the text cannot be
    recovered. ``kind`` ("file", "study" ...) is mixed in so keys of different kinds never match."""
    digest = hashlib.sha256(_salt() + b"\x00" + kind.encode() + b"\x00" + text.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:KEY_HEX_CHARS]


def file_key(path: str | os.PathLike) -> str:
    """The key that names a file or folder in errors, logs and sample metadata (of its real path,
    so a relative path, an absolute one and a symlink to the file agree)."""
    return salted_key(os.path.realpath(os.fspath(path)), "file")


def normalise_key(text: str) -> str:
    """A key as a user pastes it: ``3FA2...``, ``file:3fa2...`` (meta's source id form)."""
    return text.strip().lower().removeprefix("file:")


def locate(keys: Iterable[str], folder: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """``(key, path)`` for every file or folder below ``folder`` (itself included) whose key is
    one of ``keys``. Hashing names only (no file is opened), so a million files take seconds."""
    wanted = {normalise_key(key) for key in keys}
    folder = os.fspath(folder)
    candidates = [folder]
    for parent, dirs, files in os.walk(folder):
        candidates += [os.path.join(parent, name) for name in dirs + files]
    for path in candidates:
        key = file_key(path)
        if key in wanted:
            yield key, path


def scrub_path(text: str, path: str | os.PathLike, replacement: str = "<file>") -> str:
    """``text`` with the path (as given, absolute, real) and its file name replaced: third-party
    messages (Pillow's "cannot identify image file '/data/...'") quote the path they were given."""
    path = os.fspath(path)
    forms = {path, os.path.abspath(path), os.path.realpath(path), os.path.basename(path)}
    for form in sorted((f for f in forms if f), key=len, reverse=True):
        text = text.replace(form, replacement)
    return text


def path_arguments(cls: type) -> set[str]:
    """Constructor arguments of ``cls`` (and its bases) annotated as ``os.PathLike``: the data
    paths of a dataset's config."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(p.name for p in parameters if "PathLike" in str(p.annotation))
    return names


def redact_data_paths(cfg: Any) -> Any:
    """A copy of a config (plain dicts and lists) in which the data paths of every dataset whose
    class declares ``phi_paths = True`` are replaced by ``<redacted path, file key KEY>``.

    Used for the resolved config a run dumps into its work dir and into its checkpoints: both get
    shared, and a medical data path may name a patient. ``facetvlp locate KEY FOLDER`` finds a
    redacted path again.
    """
    from .registry import DATASETS, registered

    return _redact(cfg, registered(DATASETS))


def _redact(cfg: Any, datasets: dict[str, type]) -> Any:
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_redact(item, datasets) for item in cfg)
    if not isinstance(cfg, dict):
        return cfg
    out = {key: _redact(value, datasets) for key, value in cfg.items()}
    kind = cfg.get("type")
    cls = datasets.get(kind) if isinstance(kind, str) else kind if isinstance(kind, type) else None
    if cls is not None and getattr(cls, "phi_paths", False):
        for name in path_arguments(cls) & set(out):
            out[name] = _redact_value(out[name])
    return out


def _redact_value(value: Any) -> Any:
    if isinstance(value, (str, os.PathLike)):
        return f"{REDACTED_PREFIX}{file_key(value)}>"
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_value(item) for item in value)
    return value
