"""The archive's index in SQLite: the connections, the writes of the archive's
commit, and the reads of its queries. The tables are `dimse.archive.schema`'s, the
statements of the writes `dimse.archive.index_writes`'s.

A `journal` table names the files whose index rows may not match them yet: a row is
committed before a file is renamed into place and removed in the transaction that
indexes it. After a crash, each journaled file is indexed again from what is on disk
(`Archive` does it at start), so that the index always ends up describing the files.

Durability: the journal entries are committed FULL (flushed to disk) before their
files are renamed into place; the index rows that end them are committed NORMAL
(written to the WAL, flushed with the next FULL commit or checkpoint). An
acknowledged instance lost from the index by a power cut still has its durable
journal entry, so it is indexed again from its file at the next start: one flush
per instance fewer, and nothing acknowledged is lost. (A row put without a journal
entry, such as by `Archive._settle`, is committed FULL.)

Concurrency: SQLite in WAL mode, so readers never wait for the writer. Readers borrow
a connection from a pool (one thread at a time per connection); the one writer
connection is used only by the archive's commit, which holds its own lock.

`shared`: the worker processes of one dicomscp (`dicomscp --workers N`) write into one
index. They act as one writer through one lock, flock(2) on the file `.path-locks`
beside the index (each worker opens it, so each holds its own), that a worker holds
for the whole of a commit (`file_lock`: journaling its batch, renaming the files,
indexing them) and around any other write:

- two workers storing the same instance take turns, and leave the file and its row
  agreeing (PostgreSQL's advisory lock on the path does this for nodes);
- their write transactions never meet SQLite's busy handler, which retries after
  sleeps of up to 100 ms (80 stores/s where one process does 400): the lock hands
  over the moment it is free;
- one lock, and flock rather than a POSIX record lock: the kernel's deadlock check
  of record locks counts processes, not threads, so a worker waiting for the commit
  lock while another of its threads waited for another lock (the association
  limits' tally) was refused with EDEADLK, a deadlock that was not there, and a batch
  of stores failed (0110) under 200 associations at once;
- the kernel releases it when its process dies, SIGKILL included.

The data fsyncs, which cost most, happen before, outside the lock, in parallel. No
cache of parent rows: another worker may have changed them. `journal()` lists every
worker's entries: a worker (re)started after a crash rolls forward those of a dead
one under the lock, so never a store still in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from dimse.archive.backend import IndexFull
from dimse.archive.dialect import SQLITE, Dialect
from dimse.archive.index_writes import Writes
from dimse.archive.schema import SCHEMA_VERSION, Record, schema_sql
from dimse.drivers.locks import new_lock

__all__ = ["Index", "IndexFull"]

#: The file of the workers' commit lock, beside the index.
PATH_LOCKS = ".path-locks"


class Index:
    """The SQLite index at `path` (see the module docstring); an
    `dimse.archive.backend.IndexBackend`."""

    dialect: Dialect = SQLITE

    def __init__(self, path: Path, *, fsync: bool = True, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fsync = fsync
        self._held = 0  # times the workers' commit lock is taken, nested (`_writer_lock`)
        self._locks = (
            os.open(path.with_name(PATH_LOCKS), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if shared
            else -1
        )
        self._pool_lock = new_lock()
        self._idle: list[sqlite3.Connection] = []
        self._open: list[sqlite3.Connection] = []
        self._closed = False
        self._writer = self._connect()
        self._full = fsync  # the writer's synchronous setting (`_sync`)
        # The patient, study and series rows as this process last wrote them, when
        # only this process writes (the archive's lock); see dimse/archive/index_writes.py.
        self._writes = Writes(SQLITE, cache=not shared, lock_parents=False)
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

    def _sync(self, full: bool) -> None:
        """FULL (the commit flushed to disk) or NORMAL (written to the WAL only) for
        the next commit: a PRAGMA of the connection, switched only when it changes."""
        if full != self._full:
            self._writer.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    @contextlib.contextmanager
    def _statement(self) -> Iterator[sqlite3.Connection]:
        """The writer for one statement in autocommit, flushed (FULL)."""
        with self._writer_lock():
            self._sync(self._fsync)
            try:
                yield self._writer
            except sqlite3.Error as exc:
                if self.dialect.is_full(exc):
                    raise IndexFull(str(exc)) from exc
                raise

    @contextlib.contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with self._writer_lock():
            yield from self._transaction_body(durable)

    def _transaction_body(self, durable: bool) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        self._sync(durable and self._fsync)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            self._writes.forget()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self.dialect.is_full(exc):
                raise IndexFull(str(exc)) from exc
            raise

    # ---- writing: only under the archive's commit lock

    def file_lock(self, path: str) -> contextlib.AbstractContextManager[None]:
        """Shared: the workers' one record lock (module docstring), whatever the path.
        Else nothing to do: this process is the archive's only writer (its `.lock`)."""
        return self._writer_lock()

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        """The workers' commit lock, taken once however often it is asked for (a
        batch asks once per path, then again for each transaction)."""
        if not self.shared:
            yield
            return
        if not self._held:
            fcntl.flock(self._locks, fcntl.LOCK_EX)
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                fcntl.flock(self._locks, fcntl.LOCK_UN)

    def begin(self, sop_instance_uid: str, path: str, *, replace: bool) -> int | None:
        """Journal `path` before its file is renamed into place; returns the journal id.
        Returns None, journaling nothing, when the instance is indexed already and
        `replace` is false."""
        return self.begin_many([(sop_instance_uid, path)], replace=replace)[0]

    def begin_many(self, items: Sequence[tuple[str, str]], *, replace: bool) -> list[int | None]:
        """`begin` for several instances, in one transaction (durable: FULL)."""
        if replace and len(items) == 1:  # one INSERT: SQLite commits it by itself
            with self._statement() as conn:
                cursor = conn.execute("INSERT INTO journal (path) VALUES (?)", (items[0][1],))
            assert cursor.lastrowid is not None
            return [cursor.lastrowid]
        ids: list[int | None] = []
        with self._transaction() as conn:
            for sop_instance_uid, path in items:
                if not replace and self._writes.indexed(conn, sop_instance_uid):
                    ids.append(None)
                    continue
                cursor = conn.execute("INSERT INTO journal (path) VALUES (?)", (path,))
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
        return ids

    def put(self, record: Record, journal_id: int | None) -> None:
        """Index one instance (replacing its row, and moving it if its series, study or
        patient changed), in one transaction that also ends its journal entry."""
        self.put_many([(record, journal_id)])

    def put_many(self, items: Sequence[tuple[Record, int | None]]) -> None:
        """`put` for several instances, in one transaction. Not flushed to disk when
        each is journaled (module docstring, "Durability")."""
        journaled = all(journal_id is not None for _, journal_id in items)
        with self._transaction(durable=not journaled) as conn:
            for record, journal_id in items:
                self._writes.put(conn, record, journal_id)

    def remove(self, path: str, journal_id: int | None) -> None:
        """Forget the instance stored at `path` (its file is gone) and end the journal entry."""
        self._writes.forget()
        with self._transaction() as conn:
            self._writes.remove(conn, path, journal_id)

    def journal(self) -> list[tuple[int, str]]:
        """The journaled (id, path) pairs, oldest first (every worker's, when shared)."""
        return [
            (row[0], row[1])
            for row in self._writer.execute("SELECT id, path FROM journal ORDER BY id")
        ]

    def adopt(self, node: str) -> bool:
        """No other node writes into an SQLite archive: nothing to adopt."""
        return False

    def release_adopted(self) -> None:
        pass

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
        if self._locks >= 0:
            os.close(self._locks)
            self._locks = -1
