"""The SQL of a query on the archive's index (`dimse.archive.schema`): the tables of a
level joined with those above it, the WHERE clause of a matching condition
(PS3.4 C.2.2.2) where SQL can say it, and the attributes computed from the index
(PS3.4 C.3.4). `dimse.archive.query` puts them together. Written once for SQLite and
PostgreSQL: what they write differently is asked of a `dimse.archive.dialect.Dialect`
(SQLite's when none is given).
"""

from __future__ import annotations

import functools
from typing import Any

from dimse.archive.conditions import (
    AnyOf,
    Condition,
    Range,
    Single,
    UidList,
    Universal,
    Wildcard,
)
from dimse.archive.dialect import SQLITE, Dialect
from dimse.archive.query_keys import IMAGE, PATIENT, SERIES, STUDY, Column
from dimse.archive.schema import ALIASES, PARENT, TABLES, UNIQUE
from dimse.models import LEVELS

#: Attributes of PS3.4 C.3.4 Table C.3-1 (and Available Transfer Syntax UID,
#: C.6.1.1.5) computed from the index: keyword -> (entity, VR).
COMPUTED_LEVELS: dict[str, tuple[str, str]] = {
    "NumberOfPatientRelatedStudies": (PATIENT, "IS"),
    "NumberOfPatientRelatedSeries": (PATIENT, "IS"),
    "NumberOfPatientRelatedInstances": (PATIENT, "IS"),
    "NumberOfStudyRelatedSeries": (STUDY, "IS"),
    "NumberOfStudyRelatedInstances": (STUDY, "IS"),
    "ModalitiesInStudy": (STUDY, "CS"),
    "SOPClassesInStudy": (STUDY, "UI"),
    "NumberOfSeriesRelatedInstances": (SERIES, "IS"),
    "AvailableTransferSyntaxUID": (IMAGE, "UI"),
}


@functools.cache
def computed(dialect: Dialect = SQLITE) -> dict[str, tuple[str, str, str]]:
    """The attributes of `COMPUTED_LEVELS`: keyword -> (entity, VR, SQL expression)."""
    exprs = {
        "NumberOfPatientRelatedStudies": "(SELECT COUNT(*) FROM studies x WHERE x.PatientID = p.PatientID)",
        "NumberOfPatientRelatedSeries": "(SELECT COUNT(*) FROM series x JOIN studies y ON y.StudyInstanceUID = x.StudyInstanceUID"
        " WHERE y.PatientID = p.PatientID)",
        "NumberOfPatientRelatedInstances": "(SELECT COUNT(*) FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " JOIN studies z ON z.StudyInstanceUID = y.StudyInstanceUID WHERE z.PatientID = p.PatientID)",
        "NumberOfStudyRelatedSeries": "(SELECT COUNT(*) FROM series x WHERE x.StudyInstanceUID = st.StudyInstanceUID)",
        "NumberOfStudyRelatedInstances": "(SELECT COUNT(*) FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " WHERE y.StudyInstanceUID = st.StudyInstanceUID)",
        "ModalitiesInStudy": dialect.joined_distinct(
            "x.Modality",
            "FROM series x WHERE x.StudyInstanceUID = st.StudyInstanceUID AND x.Modality <> ''",
        ),
        "SOPClassesInStudy": dialect.joined_distinct(
            "x.SOPClassUID",
            "FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
            " WHERE y.StudyInstanceUID = st.StudyInstanceUID",
        ),
        "NumberOfSeriesRelatedInstances": "(SELECT COUNT(*) FROM instances x WHERE x.SeriesInstanceUID = se.SeriesInstanceUID)",
        "AvailableTransferSyntaxUID": "i.TransferSyntaxUID",
    }
    return {name: (*levels, exprs[name]) for name, levels in COMPUTED_LEVELS.items()}


#: The computed attributes in SQLite's SQL.
COMPUTED = computed(SQLITE)


@functools.cache
def _representative(dialect: Dialect) -> dict[str, str]:
    """The path of the instance stored last under an entity, for attributes read from a file."""
    last = f"ORDER BY x.{dialect.order} DESC LIMIT 1"
    return {
        IMAGE: "i.path",
        SERIES: "(SELECT x.path FROM instances x WHERE x.SeriesInstanceUID = se.SeriesInstanceUID"
        f" {last})",
        STUDY: "(SELECT x.path FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        f" WHERE y.StudyInstanceUID = st.StudyInstanceUID {last})",
        PATIENT: "(SELECT x.path FROM instances x JOIN series y ON y.SeriesInstanceUID = x.SeriesInstanceUID"
        " JOIN studies z ON z.StudyInstanceUID = y.StudyInstanceUID WHERE z.PatientID = p.PatientID"
        f" {last})",
    }


def sql_condition(
    expr: str, vr: str, condition: Condition, dialect: Dialect = SQLITE
) -> tuple[str, list[Any]] | None:
    """A WHERE clause testing the column `expr` (its `__k` twin for ranges), or None
    when the condition is tested in Python instead (PN, sequences). Wild cards are
    case-sensitive, as C.2.2.2.4 requires (`Dialect.wildcard`)."""
    p = dialect.param
    if isinstance(condition, Universal):
        return dialect.true, []
    if vr == "PN" and isinstance(condition, (Single, Wildcard, AnyOf)):
        return None  # component groups and case folding: dimse.archive.matching
    if isinstance(condition, Single):
        return f"{expr} = {p}", [condition.value]
    if isinstance(condition, Wildcard):
        return dialect.wildcard(expr, condition.pattern)
    if isinstance(condition, UidList):
        return dialect.in_uids(expr, tuple(condition.uids))
    if isinstance(condition, Range):
        clauses, params = [f"{expr}__k <> ''"], []
        if condition.low is not None:
            clauses.append(f"{expr}__k >= {p}")
            params.append(condition.low)
        if condition.high is not None:
            clauses.append(f"{expr}__k <= {p}")
            params.append(condition.high)
        return " AND ".join(clauses), params
    if isinstance(condition, AnyOf):
        parts = [sql_condition(expr, vr, option, dialect) for option in condition.options]
        if any(part is None for part in parts):
            return None
        clauses = [part[0] for part in parts if part is not None]
        params = [value for part in parts if part is not None for value in part[1]]
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


def representative_expr(entity: str, dialect: Dialect = SQLITE) -> str:
    return _representative(dialect)[entity]
