"""The attributes DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile) removes or
replaces, from a maintained copy of its table, and where a data set holds them.

The table comes from the ``dicom-anonymizer`` package (BSD-3), which ships Annex E's attribute
table per edition of the standard, scraped from it (``dicomfields_2026c``: 655 attributes, every
action: D, Z, X, U and their combinations). We do not type the list: a new edition is a new
package version. Annex E also removes every private attribute unless a retention option applies,
so private tags count as identifying here too.
"""

from __future__ import annotations

import functools
from typing import Iterable

from pydicom.datadict import keyword_for_tag

#: the Annex E edition used (a module of dicomanonymizer.dicom_anonymization_databases)
EDITION = "dicomfields_2026c"


@functools.lru_cache(maxsize=1)
def _table() -> tuple[frozenset[int], tuple[tuple[int, int], ...]]:
    """(exact tags, (value, mask) pairs for repeating groups such as overlays 60xx)."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    exact, masked = set(), []
    for entry in dicom_anonymization_database_selector(EDITION)["ALL_TAGS"]:
        if len(entry) == 2:
            exact.add(entry[0] << 16 | entry[1])
        else:  # (group, element, group mask, element mask): "(60xx,4000)" and the like
            group, element, group_mask, element_mask = entry
            masked.append((group << 16 | element, group_mask << 16 | element_mask))
    return frozenset(exact), tuple(masked)


def is_annex_e_tag(tag: int) -> bool:
    exact, masked = _table()
    return tag in exact or any(tag & mask == value for value, mask in masked)


def annex_e_keywords() -> tuple[str, ...]:
    """Keywords of the exact-tag attributes of the table (sorted), e.g. for documentation."""
    exact, _ = _table()
    return tuple(sorted(k for k in (keyword_for_tag(t) for t in exact) if k))


def identifying_attributes_present(ds) -> list[str]:
    """Where ``ds`` holds Annex E attributes, by keyword path (never a value): top level and file
    meta by keyword, nested items as ``Sequence>Keyword``, and private attributes by count."""
    found: dict[str, None] = {}
    private = 0

    def walk(elements: Iterable, prefix: str) -> None:
        nonlocal private
        for element in elements:
            if element.tag.is_private:
                private += 1
                continue
            name = element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"
            if is_annex_e_tag(int(element.tag)):
                found[prefix + name] = None
            if element.VR == "SQ" and element.value:
                for item in element.value:
                    walk(item, f"{prefix}{name}>")

    walk(getattr(ds, "file_meta", None) or [], "")
    walk(ds, "")
    if private:
        found[f"private attributes ({private})"] = None
    return list(found)
