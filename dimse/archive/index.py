"""The archive's index: the four levels of the Query/Retrieve information model in SQLite.

One table per entity of PS3.4 C.6.1.1 (patients, studies, series, instances), each
keyed by its level's Unique Key and holding the indexed attributes of
`dimse.archive.query_keys.INDEXED` as normalized text (`dimse.archive.matching.normalize`; several
values joined by a backslash, as on the wire), with a comparable twin column
`<keyword>__k` for DA, TM and DT. Each row points to its parent by the parent's Unique
Key. The attributes of a patient, study or series are those of the instance of it
stored last.

A `journal` table names the files whose index rows may not match them yet: a row is
committed before a file is renamed into place and removed in the transaction that
indexes it. After a crash, each journaled file is indexed again from what is on disk
(`Archive` does it at start), so that the index always ends up describing the files.

Concurrency: SQLite in WAL mode, so readers never wait for the writer. Readers borrow
a connection from a pool (one thread at a time per connection); the one writer
connection is used only by the archive's commit, which holds its own lock.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimse.archive.instance_header import TextsOf
from dimse.archive.matching import (
    AnyOf,
    Condition,
    Range,
    Single,
    UidList,
    Universal,
    Wildcard,
    normalize,
    range_key,
)
from dimse.archive.query_keys import IMAGE, INDEXED, PATIENT, SERIES, STUDY, Column
from dimse.models import LEVELS

SCHEMA_VERSION = "1"

TABLES = {PATIENT: "patients", STUDY: "studies", SERIES: "series", IMAGE: "instances"}
ALIASES = {PATIENT: "p", STUDY: "st", SERIES: "se", IMAGE: "i"}
UNIQUE = {level: INDEXED[level][0].keyword for level in LEVELS}
#: The column of each table that names its parent (the parent's Unique Key).
PARENT = {STUDY: "PatientID", SERIES: "StudyInstanceUID", IMAGE: "SeriesInstanceUID"}

#: Attributes of PS3.4 C.3.4 Table C.3-1 (and Available Transfer Syntax UID,
#: C.6.1.1.5) computed from the index: keyword -> (entity, VR, SQL expression).
COMPUTED: dict[str, tuple[str, str, str]] = {
    "NumberOfPatientRelatedStudies": (
        PATIENT,
        "IS",
        "(SELECT COUNT(*) FROM studies x WHERE x.PatientID = p.PatientID)",
    ),
    "NumberOfPatientRelatedSeries": (
        PATIENT,
        "IS",
        "(SELECT COUNT(*) FROM series x JOIN studies y ON y.StudyInstanceUID = x.StudyInstanceUID"
        " WHERE y.PatientID = p.PatientID)",
    ),
    "NumberOfPatientRelatedInstances": (
        PATIENT,
        "IS",
        "(SELECT COUNT(*) FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " JOIN studies z ON z.StudyInstanceUID = y.StudyInstanceUID WHERE z.PatientID = p.PatientID)",
    ),
    "NumberOfStudyRelatedSeries": (
        STUDY,
        "IS",
        "(SELECT COUNT(*) FROM series x WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
    ),
    "NumberOfStudyRelatedInstances": (
        STUDY,
        "IS",
        "(SELECT COUNT(*) FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " WHERE y.StudyInstanceUID = st.StudyInstanceUID)",
    ),
    "ModalitiesInStudy": (
        STUDY,
        "CS",
        "(SELECT group_concat(m, '\\') FROM (SELECT DISTINCT x.Modality AS m FROM series x"
        " WHERE x.StudyInstanceUID = st.StudyInstanceUID AND x.Modality <> '' ORDER BY m))",
    ),
    "SOPClassesInStudy": (
        STUDY,
        "UI",
        "(SELECT group_concat(c, '\\') FROM (SELECT DISTINCT x.SOPClassUID AS c FROM instances x"
        " JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " WHERE y.StudyInstanceUID = st.StudyInstanceUID ORDER BY c))",
    ),
    "NumberOfSeriesRelatedInstances": (
        SERIES,
        "IS",
        "(SELECT COUNT(*) FROM instances x WHERE x.SeriesInstanceUID = se.SeriesInstanceUID)",
    ),
    "AvailableTransferSyntaxUID": (IMAGE, "UI", "i.TransferSyntaxUID"),
}

#: The path of the instance stored last under an entity, for attributes read from a file.
_REPRESENTATIVE = {
    IMAGE: "i.path",
    SERIES: "(SELECT x.path FROM instances x WHERE x.SeriesInstanceUID = se.SeriesInstanceUID"
    " ORDER BY x.rowid DESC LIMIT 1)",
    STUDY: "(SELECT x.path FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
    " WHERE y.StudyInstanceUID = st.StudyInstanceUID ORDER BY x.rowid DESC LIMIT 1)",
    PATIENT: "(SELECT x.path FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
    " JOIN studies z ON z.StudyInstanceUID = y.StudyInstanceUID WHERE z.PatientID = p.PatientID"
    " ORDER BY x.rowid DESC LIMIT 1)",
}


@dataclass(frozen=True, slots=True)
class Record:
    """What the index keeps of one stored instance."""

    values: Mapping[str, str]  # column name -> text, for every column of every level
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    path: str  # relative to the archive's root
    size: int


_RECORD_COLUMNS = [(c.keyword, c.tag, c.vr, c.ranged) for cs in INDEXED.values() for c in cs]


def record_of(texts_of: TextsOf, transfer_syntax: str, path: str, size: int) -> Record:
    """The Record of an instance from its header attributes, as text by tag and VR
    (dimse/archive/instance_header.py `read_texts`)."""
    values: dict[str, str] = {}
    for keyword, tag, vr, ranged in _RECORD_COLUMNS:
        found = texts_of(tag, vr)
        if not found:
            values[keyword] = ""
            if ranged:
                values[keyword + "__k"] = ""
            continue
        items = [normalize(vr, t) for t in found]
        values[keyword] = "\\".join(items)
        if ranged:
            values[keyword + "__k"] = range_key(vr, items[0]) or ""
    return Record(
        values,
        values["SOPClassUID"],
        values["SOPInstanceUID"],
        transfer_syntax,
        path,
        size,
    )


def _column_names(level: str) -> list[str]:
    names = []
    for column in INDEXED[level]:
        names.append(column.keyword)
        if column.ranged:
            names.append(column.keyword + "__k")
    return names


#: Rows kept in `Index._written` before it is emptied (a few hundred bytes each).
_WRITTEN_MAX = 4096


@functools.cache
def _upsert_sql(level: str) -> tuple[str, list[str]]:
    """The INSERT ... ON CONFLICT DO UPDATE of one level's row, and the columns whose
    values it takes first (`_extra` gives the rest)."""
    names = _column_names(level)
    every = names + ([PARENT[level]] if level in PARENT else [])
    if level == IMAGE:
        every += ["TransferSyntaxUID", "path", "size"]
    updates = ", ".join(f"{n} = excluded.{n}" for n in every[1:])
    sql = (
        f"INSERT INTO {TABLES[level]} ({', '.join(every)}) VALUES ({', '.join('?' * len(every))})"
        f" ON CONFLICT ({UNIQUE[level]}) DO UPDATE SET {updates}"
    )
    return sql, names + ([PARENT[level]] if level in PARENT else [])


def _extra(level: str, record: Record) -> list[object]:
    return [record.transfer_syntax, record.path, record.size] if level == IMAGE else []


def _schema() -> str:
    statements = []
    for level in LEVELS:
        columns = [f"{UNIQUE[level]} TEXT PRIMARY KEY NOT NULL"]
        if level in PARENT:
            columns.append(f"{PARENT[level]} TEXT NOT NULL")
        columns += [f"{name} TEXT NOT NULL DEFAULT ''" for name in _column_names(level)[1:]]
        if level == IMAGE:
            columns += [
                "TransferSyntaxUID TEXT NOT NULL",
                "path TEXT NOT NULL UNIQUE",
                "size INTEGER NOT NULL",
            ]
        statements.append(f"CREATE TABLE IF NOT EXISTS {TABLES[level]} ({', '.join(columns)})")
        if level in PARENT:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {TABLES[level]}_parent ON {TABLES[level]} ({PARENT[level]})"
            )
    statements += [
        "CREATE INDEX IF NOT EXISTS patients_name ON patients (PatientName)",
        "CREATE INDEX IF NOT EXISTS studies_date ON studies (StudyDate__k)",
        "CREATE INDEX IF NOT EXISTS studies_accession ON studies (AccessionNumber)",
        "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, path TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]
    return ";\n".join(statements) + ";"


# --------------------------------------------------------------------------------------
# Matching in SQL


def _glob(pattern: str) -> str:
    """A DICOM wild card pattern (C.2.2.2.4) as a SQLite GLOB pattern: `*` and `?` are
    the same; `[` is GLOB's only other special character and is escaped as `[[]`."""
    return pattern.replace("[", "[[]")


def sql_condition(expr: str, vr: str, condition: Condition) -> tuple[str, list[Any]] | None:
    """A WHERE clause testing the column `expr` (its `__k` twin for ranges), or None
    when the condition is tested in Python instead (PN, sequences). GLOB rather than
    LIKE: case-sensitive as C.2.2.2.4 requires, and it can use an index for a prefix."""
    if isinstance(condition, Universal):
        return "1", []
    if vr == "PN" and isinstance(condition, (Single, Wildcard, AnyOf)):
        return None  # component groups and case folding: dimse.archive.matching.test
    if isinstance(condition, Single):
        return f"{expr} = ?", [condition.value]
    if isinstance(condition, Wildcard):
        return f"{expr} GLOB ?", [_glob(condition.pattern)]
    if isinstance(condition, UidList):
        return f"{expr} IN (SELECT value FROM json_each(?))", [json.dumps(list(condition.uids))]
    if isinstance(condition, Range):
        clauses, params = [f"{expr}__k <> ''"], []
        if condition.low is not None:
            clauses.append(f"{expr}__k >= ?")
            params.append(condition.low)
        if condition.high is not None:
            clauses.append(f"{expr}__k <= ?")
            params.append(condition.high)
        return " AND ".join(clauses), params
    if isinstance(condition, AnyOf):
        parts = [sql_condition(expr, vr, option) for option in condition.options]
        if any(part is None for part in parts):
            return None
        clauses = [part[0] for part in parts if part is not None]
        params = [p for part in parts if part is not None for p in part[1]]
        return "(" + " OR ".join(clauses) + ")", params
    return None


def column_expr(column: Column) -> str:
    return f"{ALIASES[column.entity]}.{column.keyword}"


def from_clause(level: str) -> str:
    """The table of `level` joined with those of every level above it."""
    parts = [f"{TABLES[level]} {ALIASES[level]}"]
    child = level
    for parent in reversed(LEVELS[: LEVELS.index(level)]):
        parts.append(
            f"JOIN {TABLES[parent]} {ALIASES[parent]} ON {ALIASES[parent]}.{UNIQUE[parent]}"
            f" = {ALIASES[child]}.{PARENT[child]}"
        )
        child = parent
    return " ".join(parts)


def representative_expr(entity: str) -> str:
    return _REPRESENTATIVE[entity]


# --------------------------------------------------------------------------------------
# The index


class IndexFull(Exception):
    """SQLite could not write: the disk is full (SQLITE_FULL)."""


class Index:
    """The SQLite index at `path` (see the module docstring)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._open: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect()
        # The patient, study and series rows as this process last wrote them, so that
        # the instances of one series (the usual upload) do not rewrite, or look up,
        # the same three rows each time. Only this process writes (the archive's lock);
        # cleared whenever a row may have gone (a delete, a rollback), and when large.
        self._written: dict[tuple[str, str], list[object]] = {}
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.executescript(_schema())
        found = self._writer.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None:
            self._writer.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            raise RuntimeError(
                f"{path}: index schema {found[0]}, this version reads {SCHEMA_VERSION}"
            )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are begun and ended explicitly.
        # check_same_thread=False: a pooled connection moves between threads, but the
        # pool lends it to one thread at a time.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        # FULL: a commit is on disk when it returns (an acknowledged instance is indexed
        # after a power loss too). NORMAL (no fsync) is still safe against a crash of
        # the process, which is all that fsync=False promises.
        conn.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
        conn.row_factory = sqlite3.Row
        with self._pool_lock:
            self._open.append(conn)
        return conn

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for reading, this thread's until the block ends."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the archive index is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        with self._pool_lock:
            if self._closed:
                conn.close()
            else:
                self._idle.append(conn)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            self._written.clear()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if (
                isinstance(exc, sqlite3.Error)
                and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
            ):
                raise IndexFull(str(exc)) from exc
            raise

    # ---- writing: only under the archive's commit lock

    def begin(self, sop_instance_uid: str, path: str, *, replace: bool) -> int | None:
        """Journal `path` before its file is renamed into place; returns the journal id.
        Returns None, journaling nothing, when the instance is indexed already and
        `replace` is false."""
        with self._transaction() as conn:
            if not replace:
                found = conn.execute(
                    "SELECT 1 FROM instances WHERE SOPInstanceUID = ?", (sop_instance_uid,)
                ).fetchone()
                if found is not None:
                    return None
            cursor = conn.execute("INSERT INTO journal (path) VALUES (?)", (path,))
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def put(self, record: Record, journal_id: int | None) -> None:
        """Index one instance (replacing its row, and moving it if its series, study or
        patient changed), in one transaction that also ends its journal entry."""
        with self._transaction() as conn:
            replaced, orphans = self._parents_before(conn, record)
            if replaced:
                conn.execute(
                    "DELETE FROM instances WHERE SOPInstanceUID = ? OR path = ?",
                    (record.sop_instance_uid, record.path),
                )
            if len(self._written) > _WRITTEN_MAX:
                self._written.clear()
            for level in LEVELS:
                sql, names = _upsert_sql(level)
                values = [record.values[name] for name in names] + _extra(level, record)
                if level != IMAGE:
                    key = (level, str(values[0]))
                    if self._written.get(key) == values:
                        continue  # the row holds these values already
                    self._written[key] = values
                conn.execute(sql, values)
            if any(orphans.values()):
                self._written.clear()
                self._drop_orphans(conn, orphans)
            if journal_id is not None:
                conn.execute("DELETE FROM journal WHERE id = ?", (journal_id,))

    def remove(self, path: str, journal_id: int | None) -> None:
        """Forget the instance stored at `path` (its file is gone) and end the journal entry."""
        self._written.clear()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT SOPInstanceUID, SeriesInstanceUID FROM instances WHERE path = ?", (path,)
            ).fetchone()
            if row is not None:
                orphans = self._ancestors(conn, row["SeriesInstanceUID"])
                conn.execute("DELETE FROM instances WHERE path = ?", (path,))
                self._drop_orphans(conn, orphans)
            if journal_id is not None:
                conn.execute("DELETE FROM journal WHERE id = ?", (journal_id,))

    def journal(self) -> list[tuple[int, str]]:
        """The journaled (id, path) pairs, oldest first."""
        return [
            (row[0], row[1])
            for row in self._writer.execute("SELECT id, path FROM journal ORDER BY id")
        ]

    @staticmethod
    def _ancestors(conn: sqlite3.Connection, series_uid: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {SERIES: {series_uid}, STUDY: set(), PATIENT: set()}
        row = conn.execute(
            "SELECT StudyInstanceUID FROM series WHERE SeriesInstanceUID = ?", (series_uid,)
        ).fetchone()
        if row is not None:
            out[STUDY].add(row[0])
            row = conn.execute(
                "SELECT PatientID FROM studies WHERE StudyInstanceUID = ?", (row[0],)
            ).fetchone()
            if row is not None:
                out[PATIENT].add(row[0])
        return out

    def _parents_before(
        self, conn: sqlite3.Connection, record: Record
    ) -> tuple[bool, dict[str, set[str]]]:
        """Whether a row of the instance (by UID or path) is there to replace, and the
        series, studies and patients that indexing `record` may leave empty: those of
        the instance's previous version, and the previous parents of its series and
        study, where they change. Nothing is a candidate for a new instance of a known
        series (the common case): it costs three lookups."""
        out: dict[str, set[str]] = {SERIES: set(), STUDY: set(), PATIENT: set()}
        series, study = record.values["SeriesInstanceUID"], record.values["StudyInstanceUID"]
        previous = conn.execute(
            "SELECT SeriesInstanceUID FROM instances WHERE SOPInstanceUID = ? OR path = ?",
            (record.sop_instance_uid, record.path),
        ).fetchall()
        for (old_series,) in previous:
            if old_series != series:
                for level, keys in self._ancestors(conn, old_series).items():
                    out[level] |= keys
        if not self._wrote_parent(SERIES, series, study):
            row = conn.execute(
                "SELECT StudyInstanceUID FROM series WHERE SeriesInstanceUID = ?", (series,)
            ).fetchone()
            if row is not None and row[0] != study:
                for level, keys in self._ancestors(conn, series).items():
                    out[level] |= keys
        patient = record.values["PatientID"]
        if not self._wrote_parent(STUDY, study, patient):
            row = conn.execute(
                "SELECT PatientID FROM studies WHERE StudyInstanceUID = ?", (study,)
            ).fetchone()
            if row is not None and row[0] != patient:
                out[PATIENT].add(row[0])
        return bool(previous), out

    def _wrote_parent(self, level: str, key: str, parent: str) -> bool:
        """Whether this process last wrote the row `key` of `level` with `parent` as
        its parent (then the row is known to be there, under that parent)."""
        written = self._written.get((level, key))
        return written is not None and written[-1] == parent

    @staticmethod
    def _drop_orphans(conn: sqlite3.Connection, candidates: dict[str, set[str]]) -> None:
        for level in (SERIES, STUDY, PATIENT):
            child = LEVELS[LEVELS.index(level) + 1]
            for key in candidates[level]:
                conn.execute(
                    f"DELETE FROM {TABLES[level]} WHERE {UNIQUE[level]} = ?"
                    f" AND NOT EXISTS (SELECT 1 FROM {TABLES[child]} WHERE {PARENT[child]} = ?)",
                    (key, key),
                )

    # ---- reading

    def count(self) -> int:
        with self.reader() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0])

    def select(self, sql: str, params: Iterable[Any], batch: int = 512) -> Iterator[sqlite3.Row]:
        """Rows of a SELECT, fetched in batches; the connection is this generator's
        until it is exhausted or closed."""
        with self.reader() as conn:
            cursor = conn.execute(sql, list(params))
            try:
                while rows := cursor.fetchmany(batch):
                    yield from rows
            finally:
                cursor.close()

    def close(self) -> None:
        """Close every connection; those lent out close when they come back."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for conn in [*idle, self._writer]:
            conn.close()
