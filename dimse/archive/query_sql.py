"""The SQL of a query on the archive's index (`dimse.archive.schema`): the tables of a
level joined with those above it, the WHERE clause of a matching condition
(PS3.4 C.2.2.2) where SQL can say it, and the attributes computed from the index
(PS3.4 C.3.4). `dimse.archive.query` puts them together.
"""

from __future__ import annotations

import json
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
from dimse.archive.query_keys import IMAGE, PATIENT, SERIES, STUDY, Column
from dimse.archive.schema import ALIASES, PARENT, TABLES, UNIQUE
from dimse.models import LEVELS

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
        return None  # component groups and case folding: dimse.archive.matching
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
