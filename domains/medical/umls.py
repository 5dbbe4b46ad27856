"""A compact, cached index over the user's licensed UMLS Metathesaurus files.

UMLS is licensed per user, so facetvlp ships none of it: point :func:`build_umls_index` at the
``META`` folder of a UMLS release (or a MetamorphoSys subset) and it streams, line by line,

* ``MRSTY.RRF``   ``CUI|TUI|STN|STY|ATUI|CVF|``                         semantic types
* ``MRCONSO.RRF`` ``CUI|LAT|TS|LUI|STT|SUI|ISPREF|AUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|``
* ``MRDEF.RRF``   ``CUI|AUI|ATUI|SATUI|SAB|DEF|SUPPRESS|CVF|``             definitions

(column layouts as in the UMLS Reference Manual; every line ends with a "|"), keeps the concepts
that pass the language / source vocabulary / semantic type filters, and writes them to one SQLite
file in a cache folder. The files are multi-GB, so nothing is read whole; the cache file is keyed
by the source files' sizes and modification times and by the filters, so a second call opens it
instantly and a new release or other filters build a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from facetvlp.core.errors import ReadError

log = logging.getLogger(__name__)

MRCONSO_COLUMNS = ("CUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "AUI", "SAUI", "SCUI", "SDUI", "SAB",
                   "TTY", "CODE", "STR", "SRL", "SUPPRESS", "CVF")
MRDEF_COLUMNS = ("CUI", "AUI", "ATUI", "SATUI", "SAB", "DEF", "SUPPRESS", "CVF")
MRSTY_COLUMNS = ("CUI", "TUI", "STN", "STY", "ATUI", "CVF")

# SUPPRESS values: O obsolete, E suppressed by the UMLS editors, Y suppressed by the source.
SUPPRESSED = frozenset("OEY")
_CUI = re.compile(r"C\d{7}\Z")
_NOT_WORD = re.compile(r"[\W_]+")  # Unicode-aware: \w is any script's letters and digits
_TUI = re.compile(r"T\d{3}\Z")
INDEX_VERSION = 2  # 2: Unicode-aware normalize()


class UMLSReadError(ReadError):
    """A UMLS RRF file is missing or not in the documented layout."""


@dataclass(frozen=True)
class Concept:
    cui: str
    name: str
    synonyms: tuple[str, ...]
    definitions: tuple[tuple[str, str], ...]  # (source vocabulary, text)
    semantic_types: tuple[tuple[str, str], ...]  # (TUI, name)


def normalize(term: str) -> str:
    """Lookup key: Unicode NFKC, case-folded, runs of characters that are neither letters nor
    digits (in any script) collapsed to one space. Accents are kept: "Épanchement pleural" and
    "épanchement  PLEURAL" meet, "Straße" and "STRASSE" meet, "肺炎" stays itself."""
    folded = unicodedata.normalize("NFKC", term).casefold()
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def read_rrf(path: Path, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Stream an RRF file as dicts, checking every line's field count."""
    if not path.is_file():
        raise UMLSReadError(path, f"missing; expected the UMLS file {path.name} in {path.parent}")
    n = len(columns)
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise UMLSReadError(path, f"line {number}: not UTF-8 ({exc.reason})") from None
            if not line:
                continue
            fields = line.split("|")
            if len(fields) == n + 1 and fields[-1] == "":
                fields.pop()  # the trailing "|" every RRF line ends with
            if len(fields) != n:
                raise UMLSReadError(path, f"line {number}: expected {n} '|'-separated fields "
                                          f"({'|'.join(columns)}), found {len(fields)}")
            if not _CUI.match(fields[0]):
                raise UMLSReadError(path, f"line {number}: first field {fields[0]!r} is not a CUI (C + 7 digits)")
            yield dict(zip(columns, fields))


def _cache_key(files: Iterable[Path], params: dict) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def build_umls_index(
    meta_dir: str | os.PathLike,
    cache_dir: str | os.PathLike,
    languages: Iterable[str] = ("ENG",),
    sources: Iterable[str] | None = None,
    semantic_types: Iterable[str] | None = None,
    include_suppressed: bool = False,
    rebuild: bool = False,
) -> "UMLSIndex":
    """Build (or reopen from the cache) the index of the concepts that pass every filter.

    ``languages``: MRCONSO ``LAT`` codes. ``sources``: ``SAB`` codes (None = all) for names and
    definitions. ``semantic_types``: TUIs ("T047") or names ("Disease or Syndrome"); None = all.
    """
    meta = Path(meta_dir)
    files = [meta / "MRSTY.RRF", meta / "MRCONSO.RRF", meta / "MRDEF.RRF"]
    for path in files:
        if not path.is_file():
            raise UMLSReadError(path, f"missing; expected the UMLS file {path.name} in {meta}")
    params = {
        "version": INDEX_VERSION,
        "languages": sorted(languages),
        "sources": sorted(sources) if sources is not None else None,
        "semantic_types": sorted(semantic_types) if semantic_types is not None else None,
        "include_suppressed": include_suppressed,
    }
    cache = Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"umls-{_cache_key(files, params)}.sqlite"
    if target.exists() and not rebuild:
        return UMLSIndex(target)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        _write_index(partial, *files, params)
        os.replace(partial, target)  # atomic: a killed build never leaves a half index behind
    finally:
        partial.unlink(missing_ok=True)
    return UMLSIndex(target)


def _write_index(out: Path, mrsty: Path, mrconso: Path, mrdef: Path, params: dict) -> None:
    languages = set(params["languages"])
    sources = set(params["sources"]) if params["sources"] is not None else None
    wanted_types = set(params["semantic_types"]) if params["semantic_types"] is not None else None
    keep_suppressed = params["include_suppressed"]

    db = sqlite3.connect(out)
    db.executescript("""
        CREATE TABLE concepts (cui TEXT PRIMARY KEY, name TEXT, rank INTEGER);
        CREATE TABLE names (cui TEXT, str TEXT, norm TEXT, UNIQUE (cui, str));
        CREATE TABLE definitions (cui TEXT, sab TEXT, def TEXT, UNIQUE (cui, sab, def));
        CREATE TABLE semantic_types (cui TEXT, tui TEXT, sty TEXT, UNIQUE (cui, tui));
        CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT);
    """)

    # 1. semantic types: decide which concepts may enter at all
    types: dict[str, list[tuple[str, str]]] = {}
    for row in read_rrf(mrsty, MRSTY_COLUMNS):
        if not _TUI.match(row["TUI"]):
            raise UMLSReadError(mrsty, f"TUI {row['TUI']!r} of {row['CUI']} is not T + 3 digits")
        types.setdefault(row["CUI"], []).append((row["TUI"], row["STY"]))
    if wanted_types is not None:
        types = {cui: sty for cui, sty in types.items()
                 if any(tui in wanted_types or name in wanted_types for tui, name in sty)}

    # 2. names: the preferred name is the atom with the best (TS=P, STT=PF, ISPREF=Y) score
    best: dict[str, tuple[int, str]] = {}
    batch = []
    for row in read_rrf(mrconso, MRCONSO_COLUMNS):
        cui = row["CUI"]
        if (row["LAT"] not in languages or cui not in types
                or (sources is not None and row["SAB"] not in sources)
                or (not keep_suppressed and row["SUPPRESS"] in SUPPRESSED)):
            continue
        rank = (row["TS"] == "P") * 4 + (row["STT"] == "PF") * 2 + (row["ISPREF"] == "Y")
        if cui not in best or rank > best[cui][0]:
            best[cui] = (rank, row["STR"])
        batch.append((cui, row["STR"], normalize(row["STR"])))
        if len(batch) >= 50_000:
            db.executemany("INSERT OR IGNORE INTO names VALUES (?, ?, ?)", batch)
            batch.clear()
    db.executemany("INSERT OR IGNORE INTO names VALUES (?, ?, ?)", batch)
    db.executemany("INSERT INTO concepts VALUES (?, ?, ?)", ((c, s, r) for c, (r, s) in best.items()))
    db.executemany("INSERT OR IGNORE INTO semantic_types VALUES (?, ?, ?)",
                   ((cui, tui, sty) for cui in best for tui, sty in types[cui]))

    # 3. definitions of the concepts that made it
    batch = []
    for row in read_rrf(mrdef, MRDEF_COLUMNS):
        if (row["CUI"] in best and (sources is None or row["SAB"] in sources)
                and (keep_suppressed or row["SUPPRESS"] not in SUPPRESSED)):
            batch.append((row["CUI"], row["SAB"], row["DEF"]))
    db.executemany("INSERT OR IGNORE INTO definitions VALUES (?, ?, ?)", batch)

    db.executescript("""
        CREATE INDEX names_norm ON names (norm);
        CREATE INDEX names_cui ON names (cui);
        CREATE INDEX definitions_cui ON definitions (cui);
        CREATE INDEX semantic_types_cui ON semantic_types (cui);
    """)
    db.execute("INSERT INTO info VALUES ('params', ?)", (json.dumps(params),))
    db.commit()
    db.close()
    log.info("UMLS index: %d concepts written to %s", len(best), out)


class UMLSIndex:
    """Read-only queries over a built index (one SQLite file)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise UMLSReadError(self.path, "no UMLS index here; build one with build_umls_index()")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            self.params = json.loads(self._db.execute("SELECT value FROM info WHERE key='params'").fetchone()[0])
        except (sqlite3.DatabaseError, TypeError) as exc:
            raise UMLSReadError(self.path, f"not a facetvlp UMLS index ({exc})") from None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM concepts").fetchone()[0]

    def concept(self, cui: str) -> Concept | None:
        row = self._db.execute("SELECT name FROM concepts WHERE cui = ?", (cui,)).fetchone()
        if row is None:
            return None
        q = self._db.execute
        synonyms = tuple(s for (s,) in q("SELECT str FROM names WHERE cui = ? ORDER BY rowid", (cui,)) if s != row[0])
        definitions = tuple(q("SELECT sab, def FROM definitions WHERE cui = ? ORDER BY rowid", (cui,)))
        semantic_types = tuple(q("SELECT tui, sty FROM semantic_types WHERE cui = ? ORDER BY tui", (cui,)))
        return Concept(cui, row[0], synonyms, definitions, semantic_types)

    def lookup(self, term: str) -> list[Concept]:
        """Concepts with a name equal to ``term`` after :func:`normalize` (case, punctuation)."""
        cuis = [c for (c,) in self._db.execute(
            "SELECT DISTINCT cui FROM names WHERE norm = ? ORDER BY cui", (normalize(term),))]
        return [self.concept(cui) for cui in cuis]

    def close(self) -> None:
        self._db.close()
