"""The archive's index in PostgreSQL, shared by several dicomscp nodes (psycopg 3).

The tables are those of SQLite (`dimse.archive.schema`, written in
`dimse.archive.dialect.POSTGRESQL`), plus a `node` column in `journal`. The database
does what it does well:

- **Transactions** (READ COMMITTED): the journal entry is committed before a file is
  renamed into place, and the instance is indexed and its entry ended in one
  transaction, as in SQLite. A deadlock or serialization failure between nodes
  (SQLSTATE 40P01, 40001) rolls the transaction back; it is run again.
- **A unique key** on SOP Instance UID and on the file's path: one row per instance.
- **Advisory locks.** `file_lock(path)` holds a session advisory lock on a hash of the
  file's path from journaling to indexing, so that two nodes storing the same instance
  at once take turns and leave the file and its row agreeing. Each node holds a
  session lock on its own name while it runs, so that a second process with the same
  name is refused (ArchiveLocked): it would remove the first one's temporary files.
  A node that dies loses its session, and with it its locks.
- Parent rows are locked before a parent left empty is deleted
  (`dimse.archive.index_writes`).

Connections: one for the node's lock, one writer (used under the archive's commit
lock, opened again if it breaks), and a pool of readers, each lent to one thread at a
time. Queries read through a server-side cursor, in batches. With fsync=False,
commits are asynchronous (synchronous_commit off): safe against a crash of dicomscp,
not of the database server, as SQLite's NORMAL.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

from dimse.archive.backend import (
    ArchiveLocked,
    IndexFull,
    IndexUnavailable,
    Row,
    describe_index,
)
from dimse.archive.dialect import POSTGRESQL, Dialect
from dimse.archive.index_writes import Writes
from dimse.archive.schema import SCHEMA_VERSION, Record, schema_sql
from dimse.drivers.locks import new_lock

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The first key of our advisory locks (two-key form): "DCM" and what is locked.
_SCHEMA_LOCK, _NODE_LOCK, _FILE_LOCK = 0x44434D00, 0x44434D01, 0x44434D02
#: SQLSTATEs after which a transaction is run again: deadlock, serialization failure.
_RETRY = frozenset({"40P01", "40001"})
_ATTEMPTS = 5
#: How long a node waits at start for its name's lock (see `PgIndex._take_node_lock`).
NODE_WAIT_S = 5.0
#: Seconds to wait for a connection to the database (libpq's connect_timeout).
CONNECT_TIMEOUT_S = 10


def _key(text: str) -> int:
    """A signed 32-bit hash of `text`, the second key of an advisory lock."""
    return int.from_bytes(
        hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()[:4], "big", signed=True
    )


class _Row:
    """A result row by position or by (lower-case) column name, as sqlite3.Row."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str) -> Any:
        return self._values[key if isinstance(key, int) else self._names[key.lower()]]


def _rows(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    names = {column.name: n for n, column in enumerate(cursor.description or ())}
    return lambda values: _Row(values, names)


class PgIndex:
    """The PostgreSQL index at `uri` for the node `node` (see the module docstring)."""

    dialect: Dialect = POSTGRESQL
    shared = True

    def __init__(self, uri: str, *, node: str, fsync: bool = True) -> None:
        self.uri = uri
        self.node = node
        self._fsync = fsync
        self._where = describe_index(uri)
        self._pool_lock = new_lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._closed = False
        self._writes = Writes(POSTGRESQL, cache=False, lock_parents=True)
        self._locked = 0  # file locks held on the writer's session (a batch holds several)
        self._adopted: list[str] = []  # nodes not running whose leftovers we finish
        self._holder = self._connect(autocommit=True)
        try:
            self._take_node_lock()
            self._writer = self._connect(autocommit=True)
        except BaseException:
            self._holder.close()
            raise
        try:
            self._create_schema()
        except BaseException:
            self._writer.close()
            self._holder.close()
            raise

    def _take_node_lock(self) -> None:
        """Hold the lock on this node's name for as long as the index is open. A
        process of that name that has just died may still hold it for a moment (until
        the server sees its connection close), so the server waits for it a while
        (lock_timeout), rather than refusing at once."""
        conn = self._holder
        conn.execute(f"SET lock_timeout = '{int(NODE_WAIT_S * 1000)}ms'")
        try:
            conn.execute(
                "SELECT pg_advisory_lock(%s::int4, %s::int4)", (_NODE_LOCK, _key(self.node))
            )
        except psycopg.errors.LockNotAvailable:
            raise ArchiveLocked(
                f"node {self.node!r} is running already on the index {self._where}: give "
                "each dicomscp sharing an archive its own node name (--node)"
            ) from None
        conn.execute("RESET lock_timeout")

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        # A bound on the wait for an unreachable server, unless the URI sets its own.
        conninfo = self.uri
        try:
            if "connect_timeout" not in conninfo:
                conninfo = make_conninfo(conninfo, connect_timeout=CONNECT_TIMEOUT_S)
            conn = psycopg.connect(
                conninfo, autocommit=autocommit, application_name=f"dicomscp {self.node}"
            )
        except psycopg.Error as exc:
            raise IndexUnavailable(
                f"cannot connect to the PostgreSQL index {self._where}: "
                f"{' '.join(str(exc).split())}; check that the server runs and the URI (user, "
                "host, port, database)"
            ) from exc
        if not self._fsync:
            conn.execute("SET synchronous_commit TO off")
            if not autocommit:
                conn.commit()
        return conn

    def _create_schema(self) -> None:
        # One node at a time: CREATE ... IF NOT EXISTS is not safe against a
        # concurrent CREATE of the same table.
        with self._writer.transaction():
            self._writer.execute("SELECT pg_advisory_xact_lock(%s::int4, 0)", (_SCHEMA_LOCK,))
            for statement in schema_sql(POSTGRESQL).rstrip(";").split(";\n"):
                self._writer.execute(statement)
            found = self._writer.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if found is None:
                self._writer.execute("INSERT INTO meta VALUES ('schema', %s)", (SCHEMA_VERSION,))
            elif found[0] != SCHEMA_VERSION:
                raise IndexUnavailable(
                    f"{self._where}: index schema {found[0]}, this version reads {SCHEMA_VERSION}"
                )

    # ---- writing: only under the archive's commit lock

    def _write_conn(self) -> psycopg.Connection[Any]:
        if self._writer.closed or self._writer.broken:
            if self._locked:
                # The file lock went with the lost session: another node may be
                # renaming into this path now. Fail this step; the archive indexes the
                # path again from disk later, under a new lock.
                raise IndexUnavailable(
                    f"the connection to {self._where} was lost while a file was locked"
                )
            log.warning("archive: the connection to %s was lost; connecting again", self._where)
            self._writer = self._connect(autocommit=True)
        return self._writer

    def _run(self, body: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`body` in one transaction, run again after a deadlock or a serialization
        failure; a full database is IndexFull."""
        for attempt in range(1, _ATTEMPTS + 1):
            conn = self._write_conn()
            try:
                with conn.transaction():
                    return body(conn)
            except psycopg.Error as exc:
                if exc.sqlstate in _RETRY and attempt < _ATTEMPTS:
                    log.info("archive: index transaction run again after %s", exc.sqlstate)
                    continue
                if self.dialect.is_full(exc):
                    raise IndexFull(f"{self._where}: {exc}") from exc
                raise
        raise AssertionError("unreachable")  # the last attempt returns or raises

    @contextlib.contextmanager
    def file_lock(self, path: str) -> Iterator[None]:
        """Hold the advisory lock of `path` (see the module docstring)."""
        conn = self._write_conn()
        key = _key(path)
        conn.execute("SELECT pg_advisory_lock(%s::int4, %s::int4)", (_FILE_LOCK, key))
        self._locked += 1
        try:
            yield
        finally:
            self._locked -= 1
            # On a broken connection the session, and so the lock, is gone already.
            if not (conn.closed or conn.broken):
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (_FILE_LOCK, key))

    def begin(self, sop_instance_uid: str, path: str, *, replace: bool) -> int | None:
        return self.begin_many([(sop_instance_uid, path)], replace=replace)[0]

    def begin_many(self, items: Sequence[tuple[str, str]], *, replace: bool) -> list[int | None]:
        def body(conn: psycopg.Connection[Any]) -> list[int | None]:
            ids: list[int | None] = []
            for sop_instance_uid, path in items:
                if not replace and self._writes.indexed(conn, sop_instance_uid):
                    ids.append(None)
                    continue
                row = conn.execute(
                    "INSERT INTO journal (node, path) VALUES (%s, %s) RETURNING id",
                    (self.node, path),
                ).fetchone()
                assert row is not None
                ids.append(int(row[0]))
            return ids

        return self._run(body)

    def put(self, record: Record, journal_id: int | None) -> None:
        self.put_many([(record, journal_id)])

    def put_many(self, items: Sequence[tuple[Record, int | None]]) -> None:
        def body(conn: psycopg.Connection[Any]) -> None:
            for record, journal_id in items:
                self._writes.put(conn, record, journal_id)

        self._run(body)

    def remove(self, path: str, journal_id: int | None) -> None:
        self._run(lambda conn: self._writes.remove(conn, path, journal_id))

    def journal(self) -> list[tuple[int, str]]:
        """The journaled (id, path) pairs, oldest first, of this node and of the
        nodes not running (adopted: see `adopt`)."""
        conn = self._write_conn()
        others = conn.execute(
            "SELECT DISTINCT node FROM journal WHERE node <> %s", (self.node,)
        ).fetchall()
        nodes = [self.node] + [str(row[0]) for row in others if self.adopt(str(row[0]))]
        rows = conn.execute(
            "SELECT id, path FROM journal WHERE node = ANY(%s) ORDER BY id", (nodes,)
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    def adopt(self, node: str) -> bool:
        """Whether `node` is not running, in which case this node takes its name's
        lock (until `release_adopted`) and finishes what it left: its journal
        entries, its temporary files. A node that dies loses its lock with its
        session, so a node that never comes back leaves nothing for ever."""
        if node == self.node or node in self._adopted:
            return True
        row = self._holder.execute(
            "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", (_NODE_LOCK, _key(node))
        ).fetchone()
        if not (row and row[0]):
            return False
        self._adopted.append(node)
        log.info("archive: node %r is not running; what it left unfinished is finished here", node)
        return True

    def release_adopted(self) -> None:
        """Let the adopted nodes start again."""
        for node in self._adopted:
            with contextlib.suppress(psycopg.Error):
                self._holder.execute(
                    "SELECT pg_advisory_unlock(%s::int4, %s::int4)", (_NODE_LOCK, _key(node))
                )
        self._adopted = []

    # ---- reading

    @contextlib.contextmanager
    def _reader(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the archive index is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect(autocommit=False)
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        if not (conn.closed or conn.broken):
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
        with self._pool_lock:
            if self._closed or conn.closed or conn.broken:
                conn.close()
            else:
                self._idle.append(conn)

    def count(self) -> int:
        with self._reader() as conn:
            row = conn.execute("SELECT COUNT(*) FROM instances").fetchone()
            return int(row[0]) if row else 0

    def select(self, sql: str, params: Iterable[Any], batch: int = 512) -> Iterator[Row]:
        """Rows of a SELECT, fetched in batches through a server-side cursor; the
        connection is this generator's until it is exhausted or closed."""
        with self._reader() as conn:
            cursor = conn.cursor("dicomscp_select", row_factory=_rows)
            try:
                cursor.execute(sql, list(params))
                while rows := cursor.fetchmany(batch):
                    yield from rows
            finally:
                with contextlib.suppress(psycopg.Error):
                    cursor.close()

    def close(self) -> None:
        """Close every connection (which ends the node's lock); those lent out close
        when they come back."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in [*idle, self._writer, self._holder]:
            conn.close()
