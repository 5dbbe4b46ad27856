"""Patient identifiers: which DICOM attributes carry them, and how to refer to a study without them.

facetvlp never copies an identifying attribute out of a DICOM file. Readers build their metadata
from an allow-list (see ``dicom_read.safe_meta``); this module holds the deny-list used to *report*
that identifiers are present (by keyword only, never by value), the salted one-way keys that let
a user group images by study or series without carrying the UIDs, and a log filter that keeps
pydicom's warnings (which quote element values) from echoing identifiers into training logs.

The deny-list is DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile) as
maintained in the dicom-anonymizer package (annex_e.py), nested sequences and private tags included.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from pathlib import Path

from .annex_e import annex_e_keywords
from .annex_e import identifying_attributes_present as annex_e_present

#: What identifies a patient, a clinician, an institution or a study instance: the attributes DICOM
#: PS3.15 Annex E removes or replaces, from a maintained copy of its table (see annex_e.py).
IDENTIFYING_KEYWORDS: tuple[str, ...] = annex_e_keywords()

_KEY_HEX_CHARS = 16  # 64 bits: collisions are negligible for any realistic archive


def identifying_attributes_present(ds) -> list[str]:
    """Keyword paths (never values) of the Annex E attributes ``ds`` holds, nested sequences and
    private attributes included, for reports."""
    return annex_e_present(ds)


def _salt() -> bytes:
    """The secret that makes keys one-way even for guessable UIDs.

    ``FACETVLP_PHI_SALT`` wins (set it on every node of a cluster so keys agree); otherwise a
    random salt is created once per user under ``$XDG_CONFIG_HOME/facetvlp`` with mode 0600.
    """
    return _salt_for(os.environ.get("FACETVLP_PHI_SALT"), os.environ.get("XDG_CONFIG_HOME"))


@functools.lru_cache(maxsize=8)  # resolved once per process (per setting), not once per image
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


def pseudonymous_key(uid: str | None, kind: str) -> str | None:
    """Salted, truncated SHA-256 of a UID: equal UIDs give equal keys, the UID cannot be recovered.

    ``kind`` ("study", "series") is mixed in so a study key never equals a series key.
    """
    if not uid:
        return None
    digest = hashlib.sha256(_salt() + b"\x00" + kind.encode() + b"\x00" + str(uid).encode())
    return digest.hexdigest()[:_KEY_HEX_CHARS]


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


class RedactQuotedValues(logging.Filter):
    """Blank out quoted values in pydicom's log records ("Invalid value for VR PN: 'Doe^John'")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = _QUOTED.sub("'<redacted>'", message)
        record.args = None
        return True


def install_pydicom_log_redaction() -> None:
    """Attach the redaction filter to pydicom's logger once (idempotent)."""
    logger = logging.getLogger("pydicom")
    if not any(isinstance(f, RedactQuotedValues) for f in logger.filters):
        logger.addFilter(RedactQuotedValues())
