"""The archive's index in SQLite: the connections, the writes of the archive's
commit, and the reads of its queries. The tables are `dimse.archive.schema`'s.

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
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dimse.archive.query_keys import IMAGE, PATIENT, SERIES, STUDY
from dimse.archive.schema import (
    PARENT,
    SCHEMA_VERSION,
    TABLES,
    UNIQUE,
    Record,
    row_extra,
    schema_sql,
    upsert_sql,
)
from dimse.drivers.locks import new_lock
from dimse.models import LEVELS

#: Rows kept in `Index._written` before it is emptied (a few hundred bytes each).
_WRITTEN_MAX = 4096


class IndexFull(Exception):
    """SQLite could not write: the disk is full (SQLITE_FULL)."""


class Index:
    """The SQLite index at `path` (see the module docstring)."""

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._pool_lock = new_lock()
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
        self._writer.executescript(schema_sql())
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
                sql, names = upsert_sql(level)
                values = [record.values[name] for name in names] + row_extra(level, record)
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
