"""Patient identifiers: which DICOM attributes carry them, and how to refer to a study without them.

facetvlp never copies an identifying attribute out of a DICOM file. Readers build their metadata
from an allow-list (see ``dicom_read.safe_meta``); this module holds the deny-list used to *report*
that identifiers are present (by keyword only, never by value), the salted one-way keys that let
a user group images by study or series without carrying the UIDs (salted as in
:mod:`facetvlp.core.privacy`, which also keys file paths), and a log filter that keeps
pydicom's warnings (which quote element values) from echoing identifiers into training logs.

The deny-list is DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile) as
maintained in the dicom-anonymizer package (annex_e.py), nested sequences and private tags included.
"""

from __future__ import annotations

import logging
import re

from facetvlp.core.privacy import salted_key

from .annex_e import annex_e_keywords
from .annex_e import identifying_attributes_present as annex_e_present

#: What identifies a patient, a clinician, an institution or a study instance: the attributes DICOM
#: PS3.15 Annex E removes or replaces, from a maintained copy of its table (see annex_e.py).
IDENTIFYING_KEYWORDS: tuple[str, ...] = annex_e_keywords()


def identifying_attributes_present(ds) -> list[str]:
    """Keyword paths (never values) of the Annex E attributes ``ds`` holds, nested sequences and
    private attributes included, for reports."""
    return annex_e_present(ds)


def pseudonymous_key(uid: str | None, kind: str) -> str | None:
    """Salted one-way key of a UID (see :func:`facetvlp.core.privacy.salted_key`): equal UIDs give
    equal keys, the UID cannot be recovered. ``kind`` ("study", "series") keeps kinds apart."""
    if not uid:
        return None
    return salted_key(str(uid), kind)


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
