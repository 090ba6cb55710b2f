"""What differs between the index's two databases, SQLite and PostgreSQL, in one
place: how a parameter is written, Wild Card Matching (PS3.4 C.2.2.2.4), a list of
UIDs, a joined list of distinct values, the column that orders instances as they were
stored, the types of the tables' columns, and which errors mean "no room".

Everything else (the tables, the queries, the matching rules) is written once, in
`dimse.archive.schema`, `dimse.archive.query_sql` and `dimse.archive.index_writes`,
through a `Dialect`, so that a C-FIND gives the same answer on both databases.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any


class Dialect:
    """SQLite's SQL; `POSTGRESQL` overrides what PostgreSQL writes differently."""

    name = "sqlite"
    #: a query parameter
    param = "?"
    #: the WHERE clause that is always true
    true = "1"
    #: the column of `instances` that grows as instances are stored (the last stored
    #: instance of an entity is the one with the largest)
    order = "rowid"
    #: the type of every text column (compared byte for byte)
    text = "TEXT"
    #: the type of a file's size
    size = "INTEGER"
    #: more columns of `instances`, after its own
    instance_extra: tuple[str, ...] = ()

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)

    def wildcard(self, expr: str, pattern: str) -> tuple[str, list[Any]]:
        """`expr` matches the DICOM wild card `pattern` (`*` any run, `?` one character),
        case-sensitively. GLOB is that already, and can use an index for a prefix;
        `[` is its only other special character, escaped as `[[]`."""
        return f"{expr} GLOB {self.param}", [pattern.replace("[", "[[]")]

    def in_uids(self, expr: str, uids: tuple[str, ...]) -> tuple[str, list[Any]]:
        """`expr` is one of `uids` (List of UID Matching, C.2.2.2.2), one parameter
        however long the list."""
        return f"{expr} IN (SELECT value FROM json_each({self.param}))", [json.dumps(list(uids))]

    def joined_distinct(self, column: str, source: str) -> str:
        """The distinct values of `column` in `source` (FROM ... WHERE ...), sorted
        byte for byte and joined with a backslash (a multi-valued attribute)."""
        return (
            f"(SELECT group_concat(v, '\\') FROM (SELECT DISTINCT {column} AS v {source}"
            " ORDER BY v))"
        )

    def journal_table(self) -> str:
        return "CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, path TEXT NOT NULL)"

    def unstorable(self, values: Mapping[str, str]) -> str:
        """Why the index cannot keep these attribute values, or "" (SQLite keeps any)."""
        return ""

    def is_full(self, exc: BaseException) -> bool:
        """Whether a database error means that the disk (or the database) is full: the
        store is then answered A700H, Out of Resources (PS3.4 B.2.3)."""
        return (
            isinstance(exc, sqlite3.Error)
            and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        )


class PostgresDialect(Dialect):
    name = "postgresql"
    param = "%s"
    true = "TRUE"
    order = "seq"
    # "C": comparison, sorting and LIKE byte for byte whatever the database's locale,
    # as in SQLite, and LIKE 'prefix%' can use the b-tree indexes.
    text = 'TEXT COLLATE "C"'
    size = "BIGINT"
    instance_extra = ("seq BIGINT GENERATED ALWAYS AS IDENTITY",)

    def wildcard(self, expr: str, pattern: str) -> tuple[str, list[Any]]:
        # LIKE is case-sensitive in PostgreSQL; its own `%` and `_` and the escape
        # character are escaped, so that only `*` and `?` are wild.
        out = []
        for ch in pattern:
            if ch == "*":
                out.append("%")
            elif ch == "?":
                out.append("_")
            elif ch in "%_!":
                out.append("!" + ch)
            else:
                out.append(ch)
        return f"{expr} LIKE {self.param} ESCAPE '!'", ["".join(out)]

    def in_uids(self, expr: str, uids: tuple[str, ...]) -> tuple[str, list[Any]]:
        return f"{expr} = ANY({self.param})", [list(uids)]

    def joined_distinct(self, column: str, source: str) -> str:
        # chr(92): a backslash whatever standard_conforming_strings says
        return f"(SELECT string_agg(DISTINCT {column}, chr(92) ORDER BY {column}) {source})"

    def journal_table(self) -> str:
        # `node`: which dicomscp journaled the entry; each rolls forward its own only
        return (
            "CREATE TABLE IF NOT EXISTS journal (id BIGINT GENERATED ALWAYS AS IDENTITY"
            ' PRIMARY KEY, node TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C" NOT NULL)'
        )

    def unstorable(self, values: Mapping[str, str]) -> str:
        # A text value of PostgreSQL cannot hold NUL; no DICOM text VR allows it inside
        # a value (padding is stripped before), so the instance is refused, not altered.
        for name, value in values.items():
            if "\x00" in value:
                return f"{name} holds a NUL character, which no text value may hold"
        return ""

    def is_full(self, exc: BaseException) -> bool:
        # SQLSTATE class 53, Insufficient Resources: disk full (53100), out of memory,
        # too many connections
        return str(getattr(exc, "sqlstate", "") or "").startswith("53")


SQLITE = Dialect()
POSTGRESQL = PostgresDialect()
