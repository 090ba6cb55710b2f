"""The one small interface of the archive's index, whichever database keeps it.

Two back ends implement `IndexBackend`:

- `dimse.archive.index.Index`, SQLite in the archive's folder: no set-up, one process
  (the archive's `.lock`), or the worker processes of one server; the default.
- `dimse.archive.index_pg.PgIndex`, PostgreSQL (`postgresql://USER@HOST:PORT/DB`, any
  libpq URI): several dicomscp nodes with one database and one shared storage folder
  act as one archive. Each node has a name (`node`): its journal entries and its
  temporary files carry it, so that it rolls forward and removes only its own, and a
  second process with the same name is refused.

`open_index` chooses by the index's description; the Archive speaks to the result
only through this interface.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from dimse.archive.dialect import Dialect
from dimse.archive.schema import Record

#: What a node's name may hold: it goes into file names and log lines.
_NODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class IndexFull(Exception):
    """The index could not be written for lack of room (a full disk, SQLite's
    SQLITE_FULL, PostgreSQL's class 53): the store is answered A700H."""


class IndexUnavailable(RuntimeError):
    """The index's database cannot be opened or used; the message says which and why."""


class ArchiveLocked(RuntimeError):
    """Another process (or another Archive object) has this archive, or this node of
    a shared archive, open."""


class Row(Protocol):
    """A result row: by position or by column name (sqlite3.Row is one)."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class IndexBackend(Protocol):
    """The index of an `Archive` (dimse/archive/archive.py says when each is called).

    The writes (`begin`, `put`, `remove`) come under the archive's commit lock and,
    for a shared index, inside `file_lock(path)` of the path they concern."""

    #: how its SQL is written
    dialect: Dialect
    #: whether other processes (other nodes) may write into the same archive folder
    shared: bool

    def file_lock(self, path: str) -> contextlib.AbstractContextManager[None]:
        """Held around journaling, renaming and indexing the file at `path`, so that
        two nodes storing the same instance take turns. A no-op where one process
        writes."""
        ...

    def begin(self, sop_instance_uid: str, path: str, *, replace: bool) -> int | None:
        """Journal `path` before its file is renamed into place; returns the journal
        id. None, journaling nothing, when the instance is indexed already and
        `replace` is false."""
        ...

    def begin_many(self, items: Sequence[tuple[str, str]], *, replace: bool) -> list[int | None]:
        """`begin` for several (SOP Instance UID, path) pairs, in one transaction."""
        ...

    def put(self, record: Record, journal_id: int | None) -> None:
        """Index one instance and end its journal entry, in one transaction."""
        ...

    def put_many(self, items: Sequence[tuple[Record, int | None]]) -> None:
        """`put` for several instances, in one transaction."""
        ...

    def remove(self, path: str, journal_id: int | None) -> None:
        """Forget the instance stored at `path` and end the journal entry."""
        ...

    def journal(self) -> list[tuple[int, str]]:
        """The journaled (id, path) pairs to roll forward at start, oldest first: this
        process's (this node's), and those of nodes not running (`adopt`)."""
        ...

    def adopt(self, node: str) -> bool:
        """Whether `node` (another node of a shared index) is not running: then this
        one finishes what it left, until `release_adopted`."""
        ...

    def release_adopted(self) -> None: ...

    def count(self) -> int: ...

    def select(self, sql: str, params: Iterable[Any], batch: int = 512) -> Iterator[Row]:
        """The rows of a SELECT written in `dialect`, fetched in batches."""
        ...

    def close(self) -> None: ...


def is_postgresql(spec: str | None) -> bool:
    return spec is not None and spec.startswith(("postgresql://", "postgres://"))


def describe_index(spec: str) -> str:
    """The index's description for messages and logs: a URI without its password or
    parameters (which may hold one)."""
    if not is_postgresql(spec):
        return spec or "sqlite"
    parts = urlsplit(spec)
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.partition(":")[0]
    return f"{parts.scheme}://{f'{user}@' if user else ''}{host}{parts.path}"


def default_node() -> str:
    """This machine's name, made fit for a node name."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", os.uname().nodename).lstrip("._-")[:63]
    return name or "node"


def check_node(node: str) -> str:
    if not _NODE.fullmatch(node):
        raise ValueError(
            f"node name {node!r}: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return node


def open_index(
    spec: str | None, sqlite_path: Path, *, fsync: bool, node: str | None, workers: bool = False
) -> IndexBackend:
    """The index `spec` describes: None or "sqlite" for SQLite at `sqlite_path`, a
    postgresql:// URI for PostgreSQL (then `node` names this process; default the
    machine's name). `workers`: SQLite written by the several worker processes of one
    server. Raises ValueError for another description, IndexUnavailable when the
    database cannot be used, ArchiveLocked when the node runs already."""
    if spec is None or spec == "sqlite":
        from dimse.archive.index import Index

        return Index(sqlite_path, fsync=fsync, shared=workers)
    if is_postgresql(spec):
        try:
            from dimse.archive.index_pg import PgIndex
        except ImportError as exc:
            raise IndexUnavailable(
                f"a PostgreSQL index needs psycopg 3, which is not installed ({exc}); "
                "install it with: pip install 'dicom-ul[postgresql]'"
            ) from exc
        return PgIndex(spec, node=check_node(node or default_node()), fsync=fsync)
    raise ValueError(
        f"index {spec!r}: give 'sqlite' (the default, in the archive folder) or a "
        "PostgreSQL URI such as postgresql://USER@HOST:5432/DB"
    )
