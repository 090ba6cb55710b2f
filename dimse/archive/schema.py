"""The tables of the archive's index: the four levels of the Query/Retrieve
information model (PS3.4 C.6.1.1), in SQLite or PostgreSQL (`dimse.archive.dialect`),
and what the index keeps of an instance.

One table per entity (patients, studies, series, instances), each keyed by its level's
Unique Key and holding the indexed attributes of `dimse.archive.query_keys.INDEXED`
as normalized text (`dimse.archive.conditions.normalize`; several values joined by a
backslash, as on the wire), with a comparable twin column `<keyword>__k` for DA, TM
and DT. Each row points to its parent by the parent's Unique Key. The attributes of a
patient, study or series are those of the instance of it stored last.

A `journal` table names the files whose index rows may not match them yet, and `meta`
holds the schema's version (`dimse.archive.index` says how they are used). The SQL of
a query on these tables is `dimse.archive.query_sql`'s.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from dimse.archive.conditions import normalize, range_key
from dimse.archive.dialect import SQLITE, Dialect
from dimse.archive.instance_header import TextsOf
from dimse.archive.query_keys import IMAGE, INDEXED, PATIENT, SERIES, STUDY
from dimse.models import LEVELS

SCHEMA_VERSION = "1"

TABLES = {PATIENT: "patients", STUDY: "studies", SERIES: "series", IMAGE: "instances"}
ALIASES = {PATIENT: "p", STUDY: "st", SERIES: "se", IMAGE: "i"}
UNIQUE = {level: INDEXED[level][0].keyword for level in LEVELS}
#: The column of each table that names its parent (the parent's Unique Key).
PARENT = {STUDY: "PatientID", SERIES: "StudyInstanceUID", IMAGE: "SeriesInstanceUID"}


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


@functools.cache
def upsert_sql(level: str, dialect: Dialect = SQLITE) -> tuple[str, list[str]]:
    """The INSERT ... ON CONFLICT DO UPDATE of one level's row, and the columns whose
    values it takes first (`row_extra` gives the rest). Both databases write it alike
    but for the parameters."""
    names = _column_names(level)
    every = names + ([PARENT[level]] if level in PARENT else [])
    if level == IMAGE:
        every += ["TransferSyntaxUID", "path", "size"]
    updates = ", ".join(f"{n} = excluded.{n}" for n in every[1:])
    sql = (
        f"INSERT INTO {TABLES[level]} ({', '.join(every)}) VALUES ({dialect.params(len(every))})"
        f" ON CONFLICT ({UNIQUE[level]}) DO UPDATE SET {updates}"
    )
    return sql, names + ([PARENT[level]] if level in PARENT else [])


def row_extra(level: str, record: Record) -> list[object]:
    """The values of a row after the indexed attributes (`upsert_sql`)."""
    return [record.transfer_syntax, record.path, record.size] if level == IMAGE else []


def schema_sql(dialect: Dialect = SQLITE) -> str:
    """The statements that create the tables and their indexes, when missing."""
    text = dialect.text
    statements = []
    for level in LEVELS:
        columns = [f"{UNIQUE[level]} {text} PRIMARY KEY NOT NULL"]
        if level in PARENT:
            columns.append(f"{PARENT[level]} {text} NOT NULL")
        columns += [f"{name} {text} NOT NULL DEFAULT ''" for name in _column_names(level)[1:]]
        if level == IMAGE:
            columns += [
                f"TransferSyntaxUID {text} NOT NULL",
                f"path {text} NOT NULL UNIQUE",
                f"size {dialect.size} NOT NULL",
                *dialect.instance_extra,
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
        dialect.journal_table(),
        f"CREATE TABLE IF NOT EXISTS meta (key {text} PRIMARY KEY, value {text} NOT NULL)",
    ]
    return ";\n".join(statements) + ";"
