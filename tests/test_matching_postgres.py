"""The matching SQL of PostgreSQL's dialect agrees with the Python rules of PS3.4
C.2.2 (dimse/archive/matching.py) and so with SQLite's (test_matching.py holds SQLite
to the same rules): wild cards with PostgreSQL's own special characters in them, date
and time ranges, lists of UIDs, several values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dimse.archive.conditions import (
    AnyOf,
    Single,
    UidList,
    Wildcard,
    compile_condition,
    normalize,
    range_key,
)
from dimse.archive.dialect import POSTGRESQL
from dimse.archive.matching import values_match
from dimse.archive.query_sql import sql_condition
from tests.test_matching import _DATES, _TIMES, sql_matches

# test_matching.py's alphabets, with the escape character of our LIKE ("!") too
_TEXT = st.text(alphabet="ab[]%_^\\.é!", max_size=6)
_PATTERN = st.text(alphabet="ab*?[]%_^.é!", min_size=1, max_size=6)


@pytest.fixture(scope="module")
def pg(pg_cluster: Any) -> Iterator[Any]:
    """A connection to a new database with one table as the index's columns are."""
    with pg_cluster.database() as uri:
        import psycopg

        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute('CREATE TABLE t (v TEXT COLLATE "C", v__k TEXT COLLATE "C")')
            yield conn


def pg_matches(conn: Any, vr: str, condition: object, stored: str) -> bool | None:
    clause = sql_condition("v", vr, condition, POSTGRESQL)  # type: ignore[arg-type]
    if clause is None:
        return None
    key = range_key(vr, stored) if vr in ("DA", "TM", "DT") else None
    with conn.transaction():
        conn.execute("DELETE FROM t")
        conn.execute("INSERT INTO t VALUES (%s, %s)", (stored, key or ""))
        row = conn.execute(f"SELECT COUNT(*) FROM t WHERE {clause[0]}", clause[1]).fetchone()
    return bool(row[0] == 1)


@settings(max_examples=300, deadline=None)
@given(pattern=_PATTERN, stored=_TEXT)
def test_postgresql_wildcards_agree_with_python_and_sqlite(
    pg: Any, pattern: str, stored: str
) -> None:
    condition = compile_condition("LO", pattern)
    stored = normalize("LO", stored)
    expected = values_match(condition, "LO", [stored] if stored else [])
    ours = pg_matches(pg, "LO", condition, stored)
    assert ours in (expected, None)
    assert ours == sql_matches("LO", condition, stored)


@settings(max_examples=100, deadline=None)
@given(low=st.one_of(st.just(""), _DATES), high=st.one_of(st.just(""), _DATES), stored=_DATES)
def test_postgresql_date_ranges_agree_with_python(
    pg: Any, low: str, high: str, stored: str
) -> None:
    condition = compile_condition("DA", f"{low}-{high}")
    assert pg_matches(pg, "DA", condition, stored) is values_match(condition, "DA", [stored])


@settings(max_examples=100, deadline=None)
@given(low=_TIMES, high=_TIMES, stored=_TIMES)
def test_postgresql_time_ranges_agree_with_python(
    pg: Any, low: str, high: str, stored: str
) -> None:
    condition = compile_condition("TM", f"{low}-{high}")
    assert pg_matches(pg, "TM", condition, stored) is values_match(condition, "TM", [stored])


def test_postgresql_lists_several_values_and_case(pg: Any) -> None:
    assert pg_matches(pg, "UI", UidList(("1.2", "1.3")), "1.3") is True
    assert pg_matches(pg, "UI", UidList(("1.2", "1.3")), "1.31") is False
    assert pg_matches(pg, "CS", AnyOf((Single("CT"), Wildcard("M?"))), "MR") is True
    assert pg_matches(pg, "LO", Wildcard("ab*"), "ABC") is False  # case-sensitive
    assert pg_matches(pg, "LO", Wildcard("a%b_*"), "a%b_c") is True  # LIKE's own, escaped
    assert pg_matches(pg, "LO", Wildcard("a%b"), "axb") is False
    assert pg_matches(pg, "LO", Wildcard("a!?"), "a!x") is True  # the escape character
    assert pg_matches(pg, "LO", Wildcard("é?"), "éa") is True  # one character, not byte
    assert sql_condition("v", "PN", Single("Doe"), POSTGRESQL) is None
