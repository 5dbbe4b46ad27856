"""Optional packages: a part that needs one names the extra that installs it.

The core does not know the domains; a domain passes its extra's name and the import names of its
third-party packages (``facetvlp.domains.EXTRA_PACKAGES``).
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Iterable, Iterator

from .errors import MissingExtraError


@contextlib.contextmanager
def extra_guard(extra: str, packages: Iterable[str], needed_by: str) -> Iterator[None]:
    """Turn a ModuleNotFoundError for one of ``packages`` (top-level import names) raised inside the
    block into a MissingExtraError naming ``extra``. Any other missing module is a bug (or a broken
    install of a package's own dependency) and propagates as it is."""
    packages = frozenset(packages)
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in packages:
            raise
        raise MissingExtraError(extra, top, needed_by) from None


def import_extra(module: str, extra: str, needed_by: str) -> ModuleType:
    """``importlib.import_module(module)`` for a package imported where it is used (open3d inside a
    reader function): a missing one is a MissingExtraError naming ``extra``."""
    with extra_guard(extra, [module.split(".")[0]], needed_by):
        return importlib.import_module(module)
