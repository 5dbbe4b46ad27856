"""`facetvlp inspect FILE`: domains register one summariser per file kind.

A summariser takes a path and returns a JSON-able dict (never patient identifiers), or raises a
ReadError. A summary may describe a file that is still unusable (a DICOM header whose pixels are
cut off): it then carries ``"error"``, and `facetvlp inspect` exits non-zero. The core keeps only
the table; domains fill it when they are imported.
A summariser's errors name the file as its domain's errors do (by key for medical files); the
core's own errors ("no such file", "no inspector") cannot tell whose file it is, so they name it by
key (``file KEY``), never by path: the user has the path on their command line, and a loop over a
PACS export must not copy patient names into its log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from .errors import UnsupportedFileError

Summariser = Callable[[str], dict[str, Any]]

_BY_SUFFIX: dict[str, Summariser] = {}
_SNIFFERS: list[tuple[Callable[[str], bool], Summariser]] = []


def register_inspector(suffixes: tuple[str, ...] = (), sniff: Callable[[str], bool] | None = None):
    """Register ``fn(path) -> dict`` for file suffixes (".dcm", ".tif", ".osm.pbf" ...) and/or a
    content sniffer (DICOM files often have no suffix)."""

    def wrap(fn: Summariser) -> Summariser:
        for suffix in suffixes:
            _BY_SUFFIX[suffix.lower()] = fn
        if sniff is not None:
            _SNIFFERS.append((sniff, fn))
        return fn

    return wrap


def check_inspectable(path: str | os.PathLike) -> None:
    """Refuse a missing path or a directory (named by key) before any summariser is looked up."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UnsupportedFileError(path, "no such file or directory", phi_paths=True)
    if os.path.isdir(path):
        raise UnsupportedFileError(path, "is a directory; inspect reads one file", phi_paths=True)


def inspect_file(path: str | os.PathLike) -> dict[str, Any]:
    path = os.fspath(path)
    check_inspectable(path)
    name = Path(path).name.lower()
    # longest suffix first so ".osm.pbf" wins over ".pbf"
    for suffix in sorted(_BY_SUFFIX, key=len, reverse=True):
        if name.endswith(suffix):
            return _BY_SUFFIX[suffix](path)
    for sniff, fn in _SNIFFERS:
        if sniff(path):
            return fn(path)
    known = ", ".join(sorted(_BY_SUFFIX)) or "(none registered)"
    raise UnsupportedFileError(path, f"no inspector for this kind of file; known suffixes: {known}",
                               phi_paths=True)


def registered_suffixes() -> list[str]:
    return sorted(_BY_SUFFIX)
