"""The statements inside the index's write transactions, written once for both
back ends (dimse/archive/index.py, SQLite; dimse/archive/index_pg.py, PostgreSQL):
index an instance (moving it when its series, study or patient changed, and removing
the parents it leaves empty), forget one, end a journal entry.

Two things differ by back end:

- `cache`: SQLite's one writing process remembers the patient, study and series rows
  as it last wrote them, so that the instances of one series (the usual upload) do
  not rewrite, or look up, the same three rows each time. With several nodes another
  may change or remove those rows at any time, so PostgreSQL keeps no cache and
  upserts the parents with every instance; that upsert also locks each parent row
  until the transaction ends.
- `lock_parents`: before the parents left empty are deleted, PostgreSQL locks their
  rows (SELECT ... FOR UPDATE, patient to series) and then tests for children in new
  statements, which see whatever a concurrent transaction committed meanwhile. Without it, under READ
  COMMITTED, a node could delete a series into which another node had just indexed
  an instance (a subquery re-checked after a row lock still reads the old snapshot),
  and that instance would vanish from every query. In SQLite only one writer exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from dimse.archive.dialect import Dialect
from dimse.archive.query_keys import IMAGE, PATIENT, SERIES, STUDY
from dimse.archive.schema import PARENT, TABLES, UNIQUE, Record, row_extra, upsert_sql
from dimse.models import LEVELS

#: Rows kept in `Writes.cache` before it is emptied (a few hundred bytes each).
CACHE_MAX = 4096


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction: sqlite3's, or psycopg's."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Any: ...


class Writes:
    """The write statements in `dialect` (see the module docstring)."""

    def __init__(self, dialect: Dialect, *, cache: bool, lock_parents: bool) -> None:
        self.dialect = dialect
        self.p = dialect.param
        #: (level, unique key) -> the row's values as last written, or None: no cache
        self.cache: dict[tuple[str, str], list[object]] | None = {} if cache else None
        self.lock_parents = lock_parents

    def forget(self) -> None:
        """Empty the cache: a row may have gone (a delete, a rollback)."""
        if self.cache is not None:
            self.cache.clear()

    def put(self, conn: Connection, record: Record, journal_id: int | None) -> None:
        """Index one instance, replacing its row, and end its journal entry."""
        p = self.p
        replaced, orphans = self._parents_before(conn, record)
        if replaced:
            conn.execute(
                f"DELETE FROM instances WHERE SOPInstanceUID = {p} OR path = {p}",
                (record.sop_instance_uid, record.path),
            )
        cache = self.cache
        if cache is not None and len(cache) > CACHE_MAX:
            cache.clear()
        for level in LEVELS:
            sql, names = upsert_sql(level, self.dialect)
            values = [record.values[name] for name in names] + row_extra(level, record)
            if level != IMAGE and cache is not None:
                key = (level, str(values[0]))
                if cache.get(key) == values:
                    continue  # the row holds these values already
                cache[key] = values
            conn.execute(sql, values)
        if any(orphans.values()):
            self.forget()
            self._drop_orphans(conn, orphans)
        self.end(conn, journal_id)

    def remove(self, conn: Connection, path: str, journal_id: int | None) -> None:
        """Forget the instance stored at `path` and end the journal entry."""
        self.forget()
        p = self.p
        row = conn.execute(
            f"SELECT SOPInstanceUID, SeriesInstanceUID FROM instances WHERE path = {p}", (path,)
        ).fetchone()
        if row is not None:
            orphans = self._ancestors(conn, row[1])
            conn.execute(f"DELETE FROM instances WHERE path = {p}", (path,))
            self._drop_orphans(conn, orphans)
        self.end(conn, journal_id)

    def end(self, conn: Connection, journal_id: int | None) -> None:
        if journal_id is not None:
            conn.execute(f"DELETE FROM journal WHERE id = {self.p}", (journal_id,))

    def indexed(self, conn: Connection, sop_instance_uid: str) -> bool:
        found = conn.execute(
            f"SELECT 1 FROM instances WHERE SOPInstanceUID = {self.p}", (sop_instance_uid,)
        ).fetchone()
        return found is not None

    def _ancestors(self, conn: Connection, series_uid: str) -> dict[str, set[str]]:
        p = self.p
        out: dict[str, set[str]] = {SERIES: {series_uid}, STUDY: set(), PATIENT: set()}
        row = conn.execute(
            f"SELECT StudyInstanceUID FROM series WHERE SeriesInstanceUID = {p}", (series_uid,)
        ).fetchone()
        if row is not None:
            out[STUDY].add(row[0])
            row = conn.execute(
                f"SELECT PatientID FROM studies WHERE StudyInstanceUID = {p}", (row[0],)
            ).fetchone()
            if row is not None:
                out[PATIENT].add(row[0])
        return out

    def _parents_before(self, conn: Connection, record: Record) -> tuple[bool, dict[str, set[str]]]:
        """Whether a row of the instance (by UID or path) is there to replace, and the
        series, studies and patients that indexing `record` may leave empty: those of
        the instance's previous version, and the previous parents of its series and
        study, where they change. Nothing is a candidate for a new instance of a known
        series (the common case): it costs three lookups."""
        p = self.p
        out: dict[str, set[str]] = {SERIES: set(), STUDY: set(), PATIENT: set()}
        series, study = record.values["SeriesInstanceUID"], record.values["StudyInstanceUID"]
        previous = conn.execute(
            f"SELECT SeriesInstanceUID FROM instances WHERE SOPInstanceUID = {p} OR path = {p}",
            (record.sop_instance_uid, record.path),
        ).fetchall()
        for (old_series,) in previous:
            if old_series != series:
                for level, keys in self._ancestors(conn, old_series).items():
                    out[level] |= keys
        if not self._wrote_parent(SERIES, series, study):
            row = conn.execute(
                f"SELECT StudyInstanceUID FROM series WHERE SeriesInstanceUID = {p}", (series,)
            ).fetchone()
            if row is not None and row[0] != study:
                for level, keys in self._ancestors(conn, series).items():
                    out[level] |= keys
        patient = record.values["PatientID"]
        if not self._wrote_parent(STUDY, study, patient):
            row = conn.execute(
                f"SELECT PatientID FROM studies WHERE StudyInstanceUID = {p}", (study,)
            ).fetchone()
            if row is not None and row[0] != patient:
                out[PATIENT].add(row[0])
        return bool(previous), out

    def _wrote_parent(self, level: str, key: str, parent: str) -> bool:
        """Whether this process last wrote the row `key` of `level` with `parent` as
        its parent (then the row is known to be there, under that parent)."""
        if self.cache is None:
            return False
        written = self.cache.get((level, key))
        return written is not None and written[-1] == parent

    def _drop_orphans(self, conn: Connection, candidates: dict[str, set[str]]) -> None:
        p = self.p
        if self.lock_parents:
            # Top down, as every transaction upserts them: two nodes then wait for each
            # other in one order, never in a circle (a deadlock PostgreSQL would break
            # only after deadlock_timeout).
            for level in (PATIENT, STUDY, SERIES):
                for key in sorted(candidates[level]):
                    conn.execute(
                        f"SELECT 1 FROM {TABLES[level]} WHERE {UNIQUE[level]} = {p} FOR UPDATE",
                        (key,),
                    ).fetchall()
        for level in (SERIES, STUDY, PATIENT):
            child = LEVELS[LEVELS.index(level) + 1]
            for key in sorted(candidates[level]):
                conn.execute(
                    f"DELETE FROM {TABLES[level]} WHERE {UNIQUE[level]} = {p}"
                    f" AND NOT EXISTS (SELECT 1 FROM {TABLES[child]} WHERE {PARENT[child]} = {p})",
                    (key, key),
                )
